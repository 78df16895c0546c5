// A page cannot know the machine's memory (navigator.deviceMemory is rounded and capped at 8 GiB),
// so nothing is refused up front: a too-large allocation fails with the engine's RangeError.

export function hostMemory(): number {
  return Number.POSITIVE_INFINITY;
}
