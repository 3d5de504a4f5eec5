/**
 * Test problems for `bench:strategies`, all minimised: the six standard functions of issue #4
 * (formulas and optima as in the virtual library of simulation experiments, sfu.ca/~ssurjano)
 * and a held-out mixed-space problem shaped like tuning a network.
 */
import type { Params } from '../domain/values.js';

export interface Problem {
  name: string;
  /** The sweep config's `parameters`, as a W&B config writes them. */
  parameters: Record<string, unknown>;
  /** The known minimum: regret is the best value found minus this. */
  optimum: number;
  evaluate(params: Params): number;
}

function box(names: string[], lo: number, hi: number): Record<string, unknown> {
  return Object.fromEntries(names.map((n) => [n, { distribution: 'uniform', min: lo, max: hi }]));
}

const xs = (d: number) => Array.from({ length: d }, (_, i) => `x${i + 1}`);
const vec = (p: Params, d: number) => xs(d).map((n) => Number(p[n]));

const branin: Problem = {
  name: 'branin',
  parameters: { x1: { distribution: 'uniform', min: -5, max: 10 }, x2: { distribution: 'uniform', min: 0, max: 15 } },
  optimum: 0.397887357729738,
  evaluate(p) {
    const [x1, x2] = vec(p, 2);
    const b = 5.1 / (4 * Math.PI ** 2);
    const c = 5 / Math.PI;
    const t = 1 / (8 * Math.PI);
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
  },
};

const H_ALPHA = [1.0, 1.2, 3.0, 3.2];
const H_A = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const H_P = [
  [1312, 1696, 5569, 124, 8283, 5886],
  [2329, 4135, 8307, 3736, 1004, 9991],
  [2348, 1451, 3522, 2883, 3047, 6650],
  [4047, 8828, 8732, 5743, 1091, 381],
].map((row) => row.map((v) => v * 1e-4));

const hartmann6: Problem = {
  name: 'hartmann6',
  parameters: box(xs(6), 0, 1),
  optimum: -3.32236801141551,
  evaluate(p) {
    const x = vec(p, 6);
    let f = 0;
    for (let i = 0; i < 4; i++) {
      let s = 0;
      for (let j = 0; j < 6; j++) s += H_A[i][j] * (x[j] - H_P[i][j]) ** 2;
      f -= H_ALPHA[i] * Math.exp(-s);
    }
    return f;
  },
};

const rosenbrock4: Problem = {
  name: 'rosenbrock4',
  parameters: box(xs(4), -5, 10),
  optimum: 0,
  evaluate(p) {
    const x = vec(p, 4);
    let f = 0;
    for (let i = 0; i < 3; i++) f += 100 * (x[i + 1] - x[i] * x[i]) ** 2 + (x[i] - 1) ** 2;
    return f;
  },
};

const ackley5: Problem = {
  name: 'ackley5',
  parameters: box(xs(5), -32.768, 32.768),
  optimum: 0,
  evaluate(p) {
    const x = vec(p, 5);
    const d = x.length;
    let sq = 0;
    let cs = 0;
    for (const v of x) {
      sq += v * v;
      cs += Math.cos(2 * Math.PI * v);
    }
    return -20 * Math.exp(-0.2 * Math.sqrt(sq / d)) - Math.exp(cs / d) + 20 + Math.E;
  },
};

const levy6: Problem = {
  name: 'levy6',
  parameters: box(xs(6), -10, 10),
  optimum: 0,
  evaluate(p) {
    const w = vec(p, 6).map((v) => 1 + (v - 1) / 4);
    const d = w.length;
    let f = Math.sin(Math.PI * w[0]) ** 2;
    for (let i = 0; i < d - 1; i++) f += (w[i] - 1) ** 2 * (1 + 10 * Math.sin(Math.PI * w[i] + 1) ** 2);
    f += (w[d - 1] - 1) ** 2 * (1 + Math.sin(2 * Math.PI * w[d - 1]) ** 2);
    return f;
  },
};

const styblinskiTang4: Problem = {
  name: 'styblinski_tang4',
  parameters: box(xs(4), -5, 5),
  optimum: -39.16616570377142 * 4,
  evaluate(p) {
    let f = 0;
    for (const v of vec(p, 4)) f += v ** 4 - 16 * v * v + 5 * v;
    return f / 2;
  },
};

/**
 * A stand-in for tuning a network, not fitted to any method: a log-uniform learning rate, an
 * integer depth, a categorical activation and a dropout rate, with interactions (the best
 * learning rate moves with the activation and the depth, the best dropout with the depth).
 */
const ACTIVATIONS: Record<string, { base: number; lrShift: number; depth: number }> = {
  relu: { base: 0.12, lrShift: 0, depth: 5 },
  tanh: { base: 0.16, lrShift: -0.6, depth: 3 },
  gelu: { base: 0.1, lrShift: 0.3, depth: 6 },
  sigmoid: { base: 0.25, lrShift: -1.2, depth: 2 },
};

const mixedNet: Problem = {
  name: 'mixed_net',
  parameters: {
    lr: { distribution: 'log_uniform_values', min: 1e-5, max: 1 },
    layers: { min: 1, max: 8 },
    activation: { values: Object.keys(ACTIVATIONS) },
    dropout: { distribution: 'uniform', min: 0, max: 0.6 },
  },
  optimum: 0.1,
  evaluate(p) {
    const act = ACTIVATIONS[String(p.activation)];
    const layers = Number(p.layers);
    const lr = Number(p.lr);
    const dropout = Number(p.dropout);
    const bestLr = -3 + act.lrShift - 0.15 * (layers - 4);
    const lrGap = Math.log10(lr) - bestLr;
    // Too large a learning rate diverges: the loss rises much faster on that side.
    const lrTerm = lrGap > 0 ? 0.12 * lrGap * lrGap + 0.05 * lrGap ** 4 : 0.06 * lrGap * lrGap;
    const depthTerm = 0.015 * (layers - act.depth) ** 2;
    const dropoutTerm = 0.8 * (dropout - 0.06 * layers) ** 2;
    return act.base + lrTerm + depthTerm + dropoutTerm + 0.02 * Math.abs(lrGap) * Math.abs(layers - act.depth);
  },
};

export const PROBLEMS: Problem[] = [branin, hartmann6, rosenbrock4, ackley5, levy6, styblinskiTang4, mixedNet];
