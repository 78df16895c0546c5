// The loss curve as a small self-contained SVG (training and validation loss against step), written
// beside a trained model. Hand-written: a plot of two polylines needs no charting library.

export interface LossCurves {
  /** [step, loss] points. */
  train: readonly (readonly [number, number])[];
  val: readonly (readonly [number, number])[];
  title?: string;
}

const WIDTH = 640;
const HEIGHT = 360;
const MARGIN = { left: 56, right: 16, top: 32, bottom: 40 };
const COLORS = { train: "#1f77b4", val: "#d62728" };

/** "Nice" tick values (1, 2 or 5 × 10^k apart) covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const escapeXml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function lossCurveSvg(curves: LossCurves): string {
  const points = [...curves.train, ...curves.val].filter(([, l]) => Number.isFinite(l));
  const steps = points.map(([s]) => s);
  const losses = points.map(([, l]) => l);
  const x0 = Math.min(0, ...steps);
  const x1 = Math.max(1, ...steps);
  let y0 = losses.length ? Math.min(...losses) : 0;
  let y1 = losses.length ? Math.max(...losses) : 1;
  if (y1 - y0 < 1e-9) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const px = (s: number) => MARGIN.left + ((s - x0) / (x1 - x0)) * plotW;
  const py = (l: number) => MARGIN.top + (1 - (l - y0) / (y1 - y0)) * plotH;
  const fmt = (v: number) => v.toFixed(1);
  const line = (pts: LossCurves["train"], color: string, name: string) => {
    const finite = pts.filter(([, l]) => Number.isFinite(l));
    if (finite.length === 0) return "";
    const d = finite.map(([s, l]) => `${fmt(px(s))},${fmt(py(l))}`).join(" ");
    const dots = finite.length === 1 ? `<circle cx="${fmt(px(finite[0]![0]))}" cy="${fmt(py(finite[0]![1]))}" r="2.5" fill="${color}"/>` : "";
    return `<polyline class="${name}" fill="none" stroke="${color}" stroke-width="1.5" points="${d}"/>${dots}`;
  };
  const xTicks = ticks(x0, x1).filter((t) => Number.isInteger(t));
  const yTicks = ticks(y0, y1);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="11">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="18" text-anchor="middle" font-size="13">${escapeXml(curves.title ?? "loss")}</text>`,
    ...yTicks.map(
      (t) =>
        `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${fmt(py(t))}" y2="${fmt(py(t))}" stroke="#e5e5e5"/>` +
        `<text x="${MARGIN.left - 6}" y="${fmt(py(t) + 4)}" text-anchor="end">${t}</text>`,
    ),
    ...xTicks.map((t) => `<text x="${fmt(px(t))}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle">${t}</text>`),
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 6}" text-anchor="middle">step</text>`,
    line(curves.train, COLORS.train, "train"),
    line(curves.val, COLORS.val, "val"),
    `<text x="${WIDTH - MARGIN.right - 120}" y="${MARGIN.top + 16}" fill="${COLORS.train}">— train</text>`,
    curves.val.length ? `<text x="${WIDTH - MARGIN.right - 60}" y="${MARGIN.top + 16}" fill="${COLORS.val}">— val</text>` : "",
    "</svg>",
    "",
  ];
  return out.filter((s) => s !== "").join("\n");
}
