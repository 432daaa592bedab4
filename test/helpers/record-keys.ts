/*
 * test/helpers/record-keys.ts - the keys of an object literal in source text,
 * for the docs test that checks each logged field against its event's row.
 *
 * Exports: recordKeys(text, open).
 * `open` is the index of the literal's `{`. Keys are the record's own
 * (`a: 1`, shorthand `a`) and those of literals spread through a ternary,
 * `...(x ? { d: 1 } : {})`; keys of nested values are not. Strings and
 * template literals (with `${}`) are skipped. Quoted keys are not reported.
 */

type Frame = 'rec' | 'obj' | 'spread' | 'paren' | 'bracket' | 'tpl';

export function recordKeys(text: string, open: number): string[] {
  const keys: string[] = [];
  const stack: Frame[] = ['rec'];
  let expectKey = true; // just after `{` or `,` of a record-level frame
  let i = open + 1;
  const top = (): Frame | undefined => stack[stack.length - 1];
  while (i < text.length && stack.length > 0) {
    const ch = text[i] ?? '';
    if (/\s/.test(ch)) { i++; continue; }
    if (expectKey && top() === 'rec') {
      const m = /^[A-Za-z_$][\w$]*(?=\s*[:,}])/.exec(text.slice(i, i + 80));
      if (m !== null) keys.push(m[0]);
      expectKey = false;
    }
    if (ch === "'" || ch === '"') {
      i = skipString(text, i);
      continue;
    }
    if (ch === '`') {
      i = skipTemplate(text, i, stack);
      continue;
    }
    if (text.startsWith('...(', i)) {
      stack.push('spread');
      i += 4;
      continue;
    }
    switch (ch) {
      case '{': stack.push(top() === 'spread' ? 'rec' : 'obj'); expectKey = top() === 'rec'; break;
      case '(': stack.push('paren'); break;
      case '[': stack.push('bracket'); break;
      case '}': case ')': case ']': {
        const f = stack.pop();
        if (f === 'tpl') { i = skipTemplate(text, i, stack); continue; }
        break;
      }
      case ',': if (top() === 'rec') expectKey = true; break;
      default: break;
    }
    i++;
  }
  return keys;
}

/** Index after the string literal starting at i. */
function skipString(text: string, i: number): number {
  const q = text[i];
  let j = i + 1;
  while (j < text.length && text[j] !== q) j += text[j] === '\\' ? 2 : 1;
  return j + 1;
}

/**
 * Index after the template literal starting at i (its backquote, or the `}` of
 * an expression in it), or at a `${`: the index inside it, with a 'tpl' frame
 * pushed, so that the expression is scanned as code until its `}`.
 */
function skipTemplate(text: string, i: number, stack: Frame[]): number {
  let j = i + 1;
  while (j < text.length) {
    const c = text[j];
    if (c === '\\') { j += 2; continue; }
    if (c === '`') return j + 1;
    if (c === '$' && text[j + 1] === '{') {
      stack.push('tpl');
      return j + 2;
    }
    j++;
  }
  return j;
}
