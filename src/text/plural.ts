// Counts in the commands' text: "1 row", "2 rows".

/** `n` and the noun, singular for exactly one (`nouns` when the plural is not noun + "s"). */
export function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}
