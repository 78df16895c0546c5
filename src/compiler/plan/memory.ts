// Liveness-based buffer assignment: each activation lives from the dispatch that writes it to the
// last dispatch that reads it (through any view); tensors whose lifetimes do not overlap share a
// buffer. A buffer read by a dispatch is never handed to that same dispatch's output, so no kernel
// reads and writes one buffer.

export interface Lifetime {
  /** The tensor (an IR node id). */
  id: number;
  bytes: number;
  /** Index of the dispatch that writes it. */
  start: number;
  /** Index of the last dispatch that reads it; Infinity for graph outputs. */
  end: number;
}

export interface Assignment {
  /** Slot of each tensor. */
  slot: Map<number, number>;
  /** Capacity of each slot in bytes. */
  slotBytes: number[];
}

/** Greedy best fit in dispatch order: a free slot that is big enough and smallest, else the largest
 *  free slot (grown), else a new slot. */
export function assignSlots(lifetimes: readonly Lifetime[]): Assignment {
  const order = [...lifetimes].sort((a, b) => a.start - b.start || a.id - b.id);
  const slot = new Map<number, number>();
  const slotBytes: number[] = [];
  const busyUntil: number[] = []; // per slot: the end of the tensor in it
  for (const t of order) {
    let best = -1;
    let largest = -1;
    for (let s = 0; s < slotBytes.length; s++) {
      if (busyUntil[s]! >= t.start) continue; // still read at or after this dispatch
      if (slotBytes[s]! >= t.bytes && (best < 0 || slotBytes[s]! < slotBytes[best]!)) best = s;
      if (largest < 0 || slotBytes[s]! > slotBytes[largest]!) largest = s;
    }
    const s = best >= 0 ? best : largest >= 0 ? largest : slotBytes.length;
    if (s === slotBytes.length) slotBytes.push(0);
    slotBytes[s] = Math.max(slotBytes[s]!, t.bytes);
    busyUntil[s] = t.end;
    slot.set(t.id, s);
  }
  return { slot, slotBytes };
}
