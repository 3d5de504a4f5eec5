/**
 * Whether every trial's argv fits the wire limits (common/limits.ts), decided from the config
 * alone. The agent reports each trial's argv with CompleteTrial and the gRPC adapter refuses an
 * entry or a list beyond the limits: a config that passed validation with a 100,000-character
 * value would run trials whose results are never accepted, stalling the sweep. So the longest
 * argv any trial could get is bounded here, and a config that could break a limit is refused,
 * naming the value (`parameters.x.values[3]`), the name or the command entry responsible.
 *
 * Values render as agent/command.ts renders them; its functions are imported rather than
 * copied so that this bound cannot drift from what the agent does. What the agent's host adds
 * (the program's absolute path, the interpreter, `${envvar:NAME}` values, the args file's path)
 * cannot be known here and is counted as nothing beyond what the config itself says.
 * `${args_json_file}` puts the parameters in a file, not in argv, so only its path counts.
 */
import { commandTemplate } from '../../common/command-template.js';
import { MAX_ARGV_ENTRIES, MAX_ARGV_ENTRY_CHARS } from '../../common/limits.js';
import { pyJsonDumps, pyRepr, pyStr, type ParamValue } from '../../domain/values.js';
import type { ConfigIssue, LeafParam, ParamSpec, ParamSpecs, SweepConfig } from '../../domain/sweep-config.js';

/**
 * The longest a drawn number can render: `repr` of a double (`-1.2345678901234567e-308`) and
 * JavaScript's `String` of an integral one (`-1.7976931348623157e+308`) are at most 24 characters.
 */
export const NUMBER_CHARS = 24;

/** Macros that give one argv entry (`${args_no_equals}` two) per top-level parameter. */
const PER_PARAMETER = new Set(['args', 'args_no_hyphens', 'args_no_equals', 'args_no_boolean_flags']);
const MACRO = /\$\{([^}]*)\}/g;
const WHOLE_MACRO = /^\$\{([^}]*)\}$/;
const LIMIT = `an argument may hold at most ${MAX_ARGV_ENTRY_CHARS} characters`;

/**
 * The two ways a parameter reaches argv: `args` is `--x=value` (what `${args}` and its variants
 * write, the longest of them), with `str(value)` at the top level and `repr` inside a nested
 * dict; `json` is `${args_json}`, all parameters in one JSON object.
 */
type Form = 'args' | 'json';

/** Every problem the trials' argv could have, or none. */
export function argvIssues(config: SweepConfig): ConfigIssue[] {
  const template = commandTemplate(config.command);
  const issues = new IssueSet();
  countIssue(template, config.parameters, config.command !== undefined, issues);
  const elements = template.map((element, i) => elementShape(element, i, config.program));
  for (const e of elements) {
    if (e.usesProgram && (config.program?.length ?? 0) > MAX_ARGV_ENTRY_CHARS) {
      issues.add('program', `is ${config.program?.length} characters; ${LIMIT}`);
    } else if (e.fixed > MAX_ARGV_ENTRY_CHARS) {
      issues.add(e.path, `${e.literal ? 'is' : 'renders as at least'} ${e.fixed} characters; ${LIMIT}`);
    }
  }
  if (elements.some((e) => e.perParameter)) parameterIssues(config.parameters, 'args', { fixed: 0, copies: 1, path: '' }, issues);
  for (const e of elements) {
    if (e.jsonCopies > 0 && e.fixed <= MAX_ARGV_ENTRY_CHARS) {
      parameterIssues(config.parameters, 'json', { fixed: e.fixed, copies: e.jsonCopies, path: e.path }, issues);
    }
  }
  return issues.list();
}

/** Issues by path, the first one kept: a value too long for several macros is reported once. */
class IssueSet {
  private readonly byPath = new Map<string, string>();
  add(path: string, message: string): void {
    if (!this.byPath.has(path)) this.byPath.set(path, message);
  }
  get size(): number {
    return this.byPath.size;
  }
  list(): ConfigIssue[] {
    return [...this.byPath].map(([path, message]) => ({ path, message }));
  }
}

/**
 * The most entries the template can expand to, as buildCommand expands it: a whole-element
 * per-parameter macro gives one entry per top-level parameter (`${args_no_equals}` two), any
 * other element one.
 */
function countIssue(template: readonly string[], parameters: ParamSpecs, custom: boolean, issues: IssueSet): void {
  const n = Object.keys(parameters).length;
  let entries = 0;
  for (const element of template) {
    const macro = WHOLE_MACRO.exec(element)?.[1];
    entries += macro === 'args_no_equals' ? 2 * n : macro !== undefined && PER_PARAMETER.has(macro) ? n : 1;
  }
  if (entries <= MAX_ARGV_ENTRIES) return;
  const limit = `a trial's argv may hold at most ${MAX_ARGV_ENTRIES} arguments`;
  if (custom) issues.add('command', `expands to up to ${entries} arguments with ${n} top-level parameters; ${limit}`);
  else issues.add('parameters', `${n} top-level parameters make the default command up to ${entries} arguments; ${limit}`);
}

interface ElementShape {
  path: string;
  /** Characters the element has whatever the parameters are: its text and the known macros. */
  fixed: number;
  /** How many times `${args_json}` appears in it: each is a copy of the same JSON. */
  jsonCopies: number;
  perParameter: boolean;
  usesProgram: boolean;
  /** Plain text, no macros: its length is exact. */
  literal: boolean;
}

function elementShape(element: string, i: number, program: string | undefined): ElementShape {
  const path = `command[${i}]`;
  const whole = WHOLE_MACRO.exec(element)?.[1];
  if (whole !== undefined && PER_PARAMETER.has(whole)) {
    return { path, fixed: 0, jsonCopies: 0, perParameter: true, usesProgram: false, literal: false };
  }
  let jsonCopies = 0;
  let usesProgram = false;
  let macros = 0;
  const text = element.replace(MACRO, (_m, name: string) => {
    macros++;
    if (name === 'args_json') jsonCopies++;
    if (name === 'program') usesProgram = true;
    // `${env}` is /usr/bin/env and the program at least its configured path; the rest is the host's.
    return name === 'env' ? '/usr/bin/env' : name === 'program' ? (program ?? '') : '';
  });
  return { path, fixed: text.length, jsonCopies, perParameter: false, usesProgram, literal: macros === 0 };
}

/** The argv entry a form's rendering sits in: `fixed` characters plus `copies` renderings. */
interface Entry {
  fixed: number;
  copies: number;
  /** The command element, for messages (`command[2]`); empty for the per-parameter form. */
  path: string;
}

/**
 * Checks one form. A value or a name too long by itself is reported at its path; only when none
 * is, the longest values together are checked, reported at the nested parameter (`--opt={...}`)
 * or, for `${args_json}`, at `parameters`.
 */
function parameterIssues(parameters: ParamSpecs, form: Form, entry: Entry, issues: IssueSet): void {
  // The most characters one rendering (`--x=value`, or the JSON object) may have.
  const budget = Math.floor((MAX_ARGV_ENTRY_CHARS - entry.fixed) / entry.copies);
  const length = (chars: number) => entry.fixed + entry.copies * chars;
  const before = issues.size;
  const names = Object.keys(parameters);
  // `{"a": A, "b": B}`: braces, `"a": ` before each value, `, ` between them.
  let total = 2 + 2 * (names.length - 1);
  const longestOf: Array<{ name: string; chars: number }> = [];

  for (const name of names) {
    const spec = parameters[name];
    const what = form === 'args' ? `'--${short(name)}=...'` : `\${args_json} (${entry.path})`;
    const report = (path: string, chars: number, exact: boolean) =>
      issues.add(path, `makes ${what} an argument of ${exact ? '' : 'at least '}${length(chars)} characters; ${LIMIT}`);
    // The least text around this parameter's value: `--x=`, or `{"x": }`.
    const around = form === 'args' ? 3 + name.length : 2 + keyChars(name, form);
    if (around > budget) {
      report(`parameters.${name}`, around, false);
      continue;
    }
    // Only a top-level value in `--x=value` is its whole entry; elsewhere there is more around it.
    const exact = form === 'args' && spec.kind === 'leaf';
    const chars = longest(spec, `parameters.${name}`, { form, budget, top: true, around }, (p, c) => report(p, c, exact));
    total += keyChars(name, form) + chars;
    longestOf.push({ name, chars: around + chars });
  }
  if (issues.size > before) return;

  if (form === 'args') {
    for (const { name, chars } of longestOf) {
      if (chars > budget) issues.add(`parameters.${name}`, `its longest values together make '--${short(name)}={...}' an argument of up to ${chars} characters; ${LIMIT}`);
    }
  } else if (total > budget) {
    const top = longestOf.reduce((a, b) => (b.chars > a.chars ? b : a));
    issues.add(
      'parameters',
      `their longest values together make \${args_json} (${entry.path}) an argument of up to ${length(total)} characters; ` +
        `${LIMIT}; parameters.${short(top.name)} alone takes ${top.chars - 2}`,
    );
  }
}

interface Walk {
  form: Form;
  /** The most characters one rendering may have. */
  budget: number;
  /** At the top level, where `--x=value` writes a string without quotes. */
  top: boolean;
  /** The least text around this spec's value in its rendering. */
  around: number;
}

/**
 * The longest rendering of one spec's value. Each value, and each nested name, too long with
 * only the least text around it goes to `tooLong`, with that length.
 */
function longest(spec: ParamSpec, path: string, w: Walk, tooLong: (path: string, chars: number) => void): number {
  if (spec.kind === 'nested') {
    const names = Object.keys(spec.parameters);
    let chars = 2 + 2 * (names.length - 1);
    for (const name of names) {
      const key = keyChars(name, w.form);
      const p = `${path}.parameters.${name}`;
      const around = w.around + 2 + key;
      chars += key;
      // A name too long by itself is reported as such, not once for each value under it.
      if (around > w.budget) tooLong(p, around);
      else chars += longest(spec.parameters[name], p, { ...w, top: false, around }, tooLong);
    }
    return chars;
  }
  const values = candidates(spec, path);
  if (values === undefined) return NUMBER_CHARS;
  let max = 0;
  for (const { path: p, value } of values) {
    const chars = render(value, w.form, w.top).length;
    if (w.around + chars > w.budget) tooLong(p, w.around + chars);
    max = Math.max(max, chars);
  }
  return max;
}

function render(value: ParamValue, form: Form, top: boolean): string {
  if (form === 'json') return pyJsonDumps(value);
  return top ? pyStr(value) : pyRepr(value);
}

/** A dict key with its `: `, as the form writes it (`'lr': ` or `"lr": `). */
function keyChars(name: string, form: Form): number {
  return (form === 'args' ? pyRepr(name) : pyJsonDumps(name)).length + 2;
}

/** The values a leaf can take, each with its path; undefined for drawn numbers (NUMBER_CHARS). */
function candidates(leaf: LeafParam, path: string): Array<{ path: string; value: ParamValue }> | undefined {
  if (leaf.values) return leaf.values.map((value, i) => ({ path: `${path}.values[${i}]`, value }));
  if (leaf.distribution === 'constant') return [{ path: `${path}.value`, value: leaf.value ?? null }];
  return undefined;
}

/** A name as a message shows it: a 100,000-character one would make the message as long. */
function short(name: string): string {
  return name.length > 60 ? `${name.slice(0, 57)}...` : name;
}
