/**
 * How a listener with several routing keys (a MultiKeyListener) picks the key of each new
 * connection: `priority` takes the first key in its order that has a reachable connector;
 * `weighted` picks among the reachable keys at random, in proportion to their weights.
 * Existing connections keep the key they were opened with. Pure functions: no sockets.
 */

export type KeyStrategy = { kind: "priority"; keys: string[] } | { kind: "weighted"; weights: Record<string, number> };

/** Every key the strategy may use, in its order (priority) or as given (weighted). */
export function strategyKeys(strategy: KeyStrategy): string[] {
  return strategy.kind === "priority" ? [...strategy.keys] : Object.keys(strategy.weights);
}

/** The keys that have a reachable connector now, in the strategy's order. */
export function reachableKeys(strategy: KeyStrategy, reachable: (key: string) => boolean): string[] {
  return strategyKeys(strategy).filter(reachable);
}

/** The key for a new connection, or undefined when no key has a reachable connector. */
export function chooseKey(strategy: KeyStrategy, reachable: (key: string) => boolean, random: () => number = Math.random): string | undefined {
  if (strategy.kind === "priority") return strategy.keys.find(reachable);
  const candidates = Object.entries(strategy.weights).filter(([key, weight]) => weight > 0 && reachable(key));
  const total = candidates.reduce((sum, [, weight]) => sum + weight, 0);
  if (total === 0) return undefined;
  let point = random() * total;
  for (const [key, weight] of candidates) {
    point -= weight;
    if (point < 0) return key;
  }
  return candidates[candidates.length - 1]?.[0];
}
