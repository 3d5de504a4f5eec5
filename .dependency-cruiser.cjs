/**
 * The dependency direction of Sweeper's folders (docs/architecture.md), enforced:
 *
 *   domain ← strategies, stopping ← config ← optimizer ← sweeps ← dashboard ← controller root
 *   common ← (config, sweeps, dashboard, root, agent, cli); agent and cli on top.
 *
 * Run: npx depcruise index.ts domain common controller agent cli bench --config .dependency-cruiser.cjs
 * bench/ may import anything (it measures the pieces from outside), but not in a cycle.
 */

/** The controller's own folders' roots, as path patterns. */
const CONTROLLER_ROOT = '^controller/[^/]+\\.ts$';
const PACKAGE_ENTRY = '^index\\.ts$';

/** A rule that `from` may not import `to`, with the reason people read when it fails. */
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A cycle ties modules together so that neither can be read, tested or moved alone.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to nothing: a typo, or a file that moved.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    forbid(
      'domain-imports-only-domain',
      'domain/ is the bottom layer: the vocabulary every other folder shares.',
      '^domain/',
      `^(common|controller|agent|cli|bench)/|${PACKAGE_ENTRY}`,
    ),
    forbid(
      'common-imports-only-domain-and-common',
      'common/ is infrastructure shared by the controller, the agent and the CLI.',
      '^common/',
      `^(controller|agent|cli|bench)/|${PACKAGE_ENTRY}`,
    ),
    forbid(
      'strategies-import-only-domain',
      'A strategy is pure: config, history and seed in, parameters out. It knows nothing above domain/.',
      '^controller/strategies/',
      `^controller/(?!strategies/)|^(common|agent|cli|bench)/|${PACKAGE_ENTRY}`,
    ),
    forbid(
      'stopping-imports-only-domain',
      'A stopping rule is pure, like a strategy, and independent of the strategies.',
      '^controller/stopping/',
      `^controller/(?!stopping/)|^(common|agent|cli|bench)/|${PACKAGE_ENTRY}`,
    ),
    forbid(
      'config-below-the-optimizer',
      'The config parser asks the strategy and stopping registries; nothing above it.',
      '^controller/config/',
      `^controller/(optimizer|sweeps|dashboard)/|${CONTROLLER_ROOT}|^(agent|cli|bench)/|${PACKAGE_ENTRY}`,
    ),
    forbid(
      'optimizer-below-the-sweeps',
      'The library (ask/tell, nextRun, stopRuns) runs without the service around it.',
      '^controller/optimizer/',
      `^controller/(sweeps|dashboard)/|${CONTROLLER_ROOT}|^(agent|cli|bench)/|${PACKAGE_ENTRY}`,
    ),
    forbid(
      'sweeps-below-the-dashboard',
      'The sweep core knows nothing of how it is shown or served.',
      '^controller/sweeps/',
      `^controller/dashboard/|${CONTROLLER_ROOT}|^(agent|cli|bench)/|${PACKAGE_ENTRY}`,
    ),
    forbid(
      'dashboard-below-the-controller-root',
      'The dashboard is wired in by the controller root, not the other way round.',
      '^controller/dashboard/',
      `${CONTROLLER_ROOT}|^(agent|cli|bench)/|${PACKAGE_ENTRY}`,
    ),
    forbid(
      'controller-not-agent',
      'The controller and the agent meet only through common/ (the wire formats).',
      '^controller/',
      '^agent/',
    ),
    forbid(
      'agent-not-controller-or-cli',
      'The agent runs on GPU hosts without the controller; it shares only domain/ and common/.',
      '^agent/',
      `^(controller|cli|bench)/|${PACKAGE_ENTRY}`,
    ),
    {
      name: 'only-cli-bench-and-entry-import-cli',
      comment: 'cli/ is the top: a thin layer over the library, which nothing below may need.',
      severity: 'error',
      from: { pathNot: `^(cli|bench)/|${PACKAGE_ENTRY}` },
      to: { path: '^cli/' },
    },
    {
      name: 'nothing-imports-the-package-entry',
      comment: 'index.ts is the library as others see it; inside, import the module itself.',
      severity: 'error',
      from: { pathNot: '^bench/' },
      to: { path: PACKAGE_ENTRY },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|controller/dashboard/static)/' },
    // `import type` is a dependency too: a type-only cycle still ties two modules together.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
