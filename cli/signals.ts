/**
 * The one owner of process signals. The first SIGINT/SIGTERM starts a graceful stop, a second
 * one forces it; handlers are told which.
 */
export function onShutdownSignals(handler: (signal: NodeJS.Signals, count: number) => void): () => void {
  let count = 0;
  const listener = (signal: NodeJS.Signals) => {
    count++;
    handler(signal, count);
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
}
