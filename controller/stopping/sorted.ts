/**
 * Sorted arrays kept sorted by binary insertion. A sweep has hundreds to a few thousand trials,
 * where a splice into a plain array beats any tree: one memmove of a few KB.
 */

/** Index of the first element >= x (the count of elements < x). */
export function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first element > x (the count of elements <= x). */
export function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function insertSorted(a: number[], x: number): void {
  a.splice(upperBound(a, x), 0, x);
}

/**
 * Trials ordered by a key (ascending; ties by id), for finding every trial whose key is above a
 * threshold without looking at the others: they are all at the end.
 */
export class KeyedSet {
  private readonly keys: number[] = [];
  private readonly ids: string[] = [];

  get size(): number {
    return this.keys.length;
  }

  /** Where (key, id) is, or would go. */
  private find(key: number, id: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const k = this.keys[mid];
      if (k < key || (k === key && this.ids[mid] < id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(key: number, id: string): void {
    const i = this.find(key, id);
    this.keys.splice(i, 0, key);
    this.ids.splice(i, 0, id);
  }

  /** Removes (key, id) if present; the key must be the one it was added with. */
  delete(key: number, id: string): boolean {
    const i = this.find(key, id);
    if (i >= this.keys.length || this.keys[i] !== key || this.ids[i] !== id) return false;
    this.keys.splice(i, 1);
    this.ids.splice(i, 1);
    return true;
  }

  /** Removes and returns every entry whose key is strictly greater than `threshold`, largest first. */
  takeAbove(threshold: number): Array<{ id: string; key: number }> {
    const out: Array<{ id: string; key: number }> = [];
    while (this.keys.length > 0 && this.keys[this.keys.length - 1] > threshold) {
      out.push({ id: this.ids.pop()!, key: this.keys.pop()! });
    }
    return out;
  }
}
