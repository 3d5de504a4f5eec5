import { PYTHON_HELPERS_DIR } from '../../agent/command.js';

/**
 * `sweeper python-path`: the folder holding Sweeper's Python modules (the `sweeper` helper, and the
 * sitecustomize that makes the `wandb` compatibility module a fallback), the one agents put on
 * PYTHONPATH. `PYTHONPATH=$(sweeper python-path) python notebook.py` gives a script run by hand
 * the same modules.
 */
export function runPythonPath(): void {
  process.stdout.write(`${PYTHON_HELPERS_DIR}\n`);
}
