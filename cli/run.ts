/** The executable entry: run the CLI and exit with its code. */
import { main } from './main.js';

const code = await main(process.argv);
// Exit explicitly: a stray handle (a gRPC channel being closed) must not keep the CLI alive.
process.exit(code);
