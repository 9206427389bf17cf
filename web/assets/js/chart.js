// Time-series charts with uPlot (loaded as a classic script before the
// modules: window.uPlot). One function: chart(container, {x, series, kind}).
import { h } from './dom.js';

export const PALETTE = ['#2f5bd3', '#e0622a', '#1c9a6c', '#b5379e', '#c9a10a', '#5a6b8c', '#d23b4b', '#3aa3c8', '#7b52c7', '#6f8f2d'];

// x: bucket starts (Date or ISO strings without an offset, read as the
// browser's local time); series: [{label, values, dashed}]; kind: line | bar.
// Returns the container; the chart follows the container's width.
export function chart(container, { x, series, kind = 'line', height = 260, yFormat }) {
  const uPlot = window.uPlot;
  const xs = x.map((t) => (t instanceof Date ? t : new Date(t)).getTime() / 1000);
  const bars = kind === 'bar' && uPlot.paths?.bars ? uPlot.paths.bars({ size: [0.7 / Math.max(1, series.length), 60] }) : null;
  const opts = {
    width: Math.max(280, container.clientWidth || 600),
    height,
    legend: { show: true },
    cursor: { focus: { prox: 16 } },
    scales: { x: { time: true } },
    axes: [{}, { size: 60, values: yFormat ? (u, ticks) => ticks.map(yFormat) : undefined }],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color || PALETTE[i % PALETTE.length],
        fill: kind === 'bar' ? (s.color || PALETTE[i % PALETTE.length]) + 'cc' : undefined,
        width: 2,
        dash: s.dashed ? [6, 4] : undefined,
        paths: bars || undefined,
        points: { show: !bars && xs.length < 60 },
        spanGaps: false,
      })),
    ],
  };
  const data = [xs, ...series.map((s) => s.values.map((v) => (v === null ? null : Number(v))))];
  container.classList.add('chart');
  const plot = new uPlot(opts, data, container);
  const ro = new ResizeObserver(() => {
    const w = Math.max(280, container.clientWidth);
    if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height });
  });
  ro.observe(container);
  container.plot = plot;
  container.disconnect = () => {
    ro.disconnect();
    plot.destroy();
  };
  return container;
}

// A horizontal bar of a share (0..1), drawn with a CSS width set through the
// CSSOM (allowed by the Content-Security-Policy, unlike a style attribute).
export function meter(share, label) {
  const bar = h('span', { class: 'meter-fill' });
  bar.style.width = `${Math.max(0, Math.min(1, share || 0)) * 100}%`;
  return h('span', { class: 'meter', role: 'img', 'aria-label': label }, bar);
}
