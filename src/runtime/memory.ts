// How much memory the host has, for refusing allocations that cannot fit before trying them.

import { totalmem } from "node:os";

export function hostMemory(): number {
  return totalmem();
}
