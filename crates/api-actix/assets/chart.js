// A key's hourly usage as an SVG bar chart. Attributes only (no inline style), so the page's
// Content-Security-Policy needs no exception.

const NS = 'http://www.w3.org/2000/svg';
const W = 250;
const H = 48;

export function createChart() {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'bars');
  svg.setAttribute('role', 'img');
  const title = document.createElementNS(NS, 'title');
  svg.append(title);
  return svg;
}

/** Draws `hours` ([{start, count}], oldest first) into `svg`; returns the total. */
export function drawChart(svg, hours) {
  const title = svg.querySelector('title');
  for (const old of svg.querySelectorAll('rect')) old.remove();
  const peak = Math.max(1, ...hours.map((h) => h.count));
  const slot = W / Math.max(1, hours.length);
  let total = 0;
  hours.forEach((h, i) => {
    total += h.count;
    const height = h.count === 0 ? 1 : Math.max(2, (h.count / peak) * (H - 2));
    const rect = document.createElementNS(NS, 'rect');
    rect.setAttribute('x', String(i * slot + 1));
    rect.setAttribute('width', String(Math.max(1, slot - 2)));
    rect.setAttribute('y', String(H - height));
    rect.setAttribute('height', String(height));
    rect.setAttribute('class', h.count === 0 ? 'bar empty' : 'bar');
    rect.dataset.count = String(h.count);
    const tip = document.createElementNS(NS, 'title');
    const when = new Date(h.start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    tip.textContent = `${when}: ${h.count} request${h.count === 1 ? '' : 's'}`;
    rect.append(tip);
    svg.append(rect);
  });
  const label = `Requests per hour over the last 24 hours: ${total} in all, at most ${Math.max(0, ...hours.map((h) => h.count))} in one hour.`;
  title.textContent = label;
  svg.setAttribute('aria-label', label);
  return total;
}
