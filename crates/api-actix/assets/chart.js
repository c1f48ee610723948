// A key's hourly usage as a bar chart: the bars in SVG, its scale (left) and hour labels (below)
// in HTML, since SVG text would stretch with the bars. Attributes and classes only (no inline
// style), so the page's Content-Security-Policy needs no exception.

const NS = 'http://www.w3.org/2000/svg';
const W = 250;
const H = 48;
/** Hours between two labels of the time axis. */
const LABEL_EVERY = 6;

function html(tag, className, text) {
  const e = document.createElement(tag);
  e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The chart's element: pass it to `drawChart`. */
export function createChart() {
  const plot = html('div', 'plot');
  const scale = html('div', 'y-scale');
  scale.setAttribute('aria-hidden', 'true');
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'bars');
  svg.setAttribute('role', 'img');
  svg.append(document.createElementNS(NS, 'title'));
  const hours = html('div', 'x-hours');
  hours.setAttribute('aria-hidden', 'true');
  plot.append(scale, svg, hours);
  return plot;
}

/** The top of the scale: 1, 2 or 5 times a power of ten, at least `peak`. */
export function scaleMax(peak) {
  if (peak <= 1) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(peak));
  return [1, 2, 5, 10].map((step) => step * magnitude).find((m) => m >= peak);
}

const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

function hourLabel(date) {
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** Draws `hours` ([{start, count}], oldest first) into `plot`; returns the total. */
export function drawChart(plot, hours) {
  const svg = plot.querySelector('svg');
  const title = svg.querySelector('title');
  for (const old of svg.querySelectorAll('rect, line')) old.remove();
  const peak = Math.max(0, ...hours.map((h) => h.count));
  const max = scaleMax(peak);
  // The scale's values, top to bottom: the middle one only when it is a whole number.
  const ticks = max % 2 === 0 ? [max, max / 2, 0] : [max, 0];
  const scale = plot.querySelector('.y-scale');
  scale.replaceChildren(
    ...ticks.map((value, i) => {
      const tick = html('span', i === 0 ? 'y-tick y-max' : 'y-tick', compact.format(value));
      tick.dataset.value = String(value);
      return tick;
    }),
  );
  for (const value of ticks.slice(0, -1)) {
    const line = document.createElementNS(NS, 'line');
    const y = String(H - (value / max) * H);
    line.setAttribute('x1', '0');
    line.setAttribute('x2', String(W));
    line.setAttribute('y1', y);
    line.setAttribute('y2', y);
    line.setAttribute('class', 'grid');
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.insertBefore(line, title.nextSibling);
  }
  const slot = W / Math.max(1, hours.length);
  let total = 0;
  hours.forEach((h, i) => {
    total += h.count;
    const height = h.count === 0 ? 1 : Math.max(2, (h.count / max) * H);
    const rect = document.createElementNS(NS, 'rect');
    rect.setAttribute('x', String(i * slot + 1));
    rect.setAttribute('width', String(Math.max(1, slot - 2)));
    rect.setAttribute('y', String(H - height));
    rect.setAttribute('height', String(height));
    rect.setAttribute('class', h.count === 0 ? 'bar empty' : 'bar');
    rect.dataset.count = String(h.count);
    const tip = document.createElementNS(NS, 'title');
    tip.textContent = `${hourLabel(new Date(h.start))}: ${h.count} request${h.count === 1 ? '' : 's'}`;
    rect.append(tip);
    svg.append(rect);
  });
  // One cell per bar, so that a label stands under the start of its hour's bar; the last cell
  // says where the chart ends.
  const axis = plot.querySelector('.x-hours');
  axis.replaceChildren(
    ...hours.map((h, i) => {
      if (i === hours.length - 1) return html('span', 'x-now', 'now');
      if (i % LABEL_EVERY !== 0 || hours.length - i <= 3) return html('span', 'x-cell');
      const tick = html('span', 'x-cell x-tick', hourLabel(new Date(h.start)));
      tick.dataset.start = h.start;
      return tick;
    }),
  );
  const label = `Requests per hour over the last 24 hours: ${total} in all, at most ${peak} in one hour.`;
  title.textContent = label;
  svg.setAttribute('aria-label', label);
  return total;
}
