// The offline HTML report builder (core/html-report.ts): every string escaped, nothing outside the page
// referenced, the chart data readable back from its JSON element, and the size bounds (points per
// chart, thumbnails per report) kept and said in the page.

import { describe, expect, it } from 'vitest';
import { encodeJpeg } from '../../core/image.ts';
import { evenIndices, renderHtmlReport, type ChartData, type ReportDoc, type ReportSection } from '../../core/html-report.ts';

const HOSTILE = '</script><img src=x onerror=alert(1)>';

function doc(over: Partial<ReportDoc> = {}): ReportDoc {
  return { kind: 'score', title: 'a report', subtitle: [], summary: [], charts: [], tables: [], sections: [], ...over };
}

/** The JSON data element of a page, parsed. */
function chartData(html: string): Record<string, ChartData> {
  const m = /<script type="application\/json" id="sw-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m).not.toBeNull();
  return (JSON.parse(m![1]!) as { charts: Record<string, ChartData> }).charts;
}

async function jpeg(): Promise<Uint8Array> {
  return encodeJpeg({ data: new Uint8Array(8 * 8 * 3).fill(120), width: 8, height: 8, channels: 3 });
}

describe('renderHtmlReport', () => {
  it('escapes every string from the data, in text, attributes and the embedded JSON', async () => {
    const thumb = await jpeg();
    const html = renderHtmlReport(
      doc({
        title: HOSTILE,
        subtitle: [HOSTILE],
        summary: [[HOSTILE, HOSTILE]],
        notes: [HOSTILE],
        charts: [
          {
            id: 'c',
            title: HOSTILE,
            xLabel: HOSTILE,
            yLabel: HOSTILE,
            series: [{ name: HOSTILE, values: [0, 1] }],
            markers: [{ x: 1, label: HOSTILE }],
          },
        ],
        tables: [{ id: 'episodes', title: HOSTILE, columns: [HOSTILE], rows: [{ cells: [HOSTILE], link: 's' }] }],
        sections: [
          {
            id: 's',
            title: HOSTILE,
            lines: [HOSTILE],
            charts: [],
            gallery: { title: HOSTILE, thumbs: [{ caption: HOSTILE, jpeg: thumb }] },
          },
        ],
      }),
    );
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain(HOSTILE);
    expect(html).toContain('&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;');
    // the only </script> tags close the page's three script elements
    expect(html.match(/<\/script/gi)).toHaveLength(3);
    const data = chartData(html).c!;
    expect(data.title).toBe(HOSTILE);
    expect(data.series[0]!.name).toBe(HOSTILE);
    expect(data.markers[0]!.label).toBe(HOSTILE);
  });

  it('references nothing outside the page: inline script and style, data: images, a CSP that allows nothing else', async () => {
    const html = renderHtmlReport(
      doc({
        charts: [{ id: 'c', title: 't', xLabel: 'x', series: [{ name: 'y', values: [1, 2, 3] }] }],
        sections: [{ id: 's', title: 's', charts: [], gallery: { title: 'g', thumbs: [{ caption: 'f0', jpeg: await jpeg() }] } }],
      }),
    );
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?\/\//i);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    for (const m of html.matchAll(/src="([^"]*)"/g)) expect(m[1]!.startsWith('data:image/jpeg;base64,')).toBe(true);
    expect(html).toContain(
      `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">`,
    );
    expect(html).toContain('<body data-report="score">');
    expect(html).toContain('<main id="report">');
    expect(html).toContain('class="sw-chart" id="chart-c" data-chart="c"');
    expect(html).toContain('var uPlot='); // uPlot's IIFE inlined
  });

  it('embeds the chart data as JSON that parses back (5 significant digits, gaps as null)', () => {
    const html = renderHtmlReport(
      doc({
        charts: [
          {
            id: 'p',
            title: 'progress',
            xLabel: 'frame',
            x: [0, 2, 4, 6],
            yRange: [0, 1],
            series: [
              { name: 'a', values: [0, 0.25, NaN, 1] },
              { name: 'b', values: [1 / 3, null, 0.5, Infinity], dash: true },
            ],
            markers: [{ x: 2, label: 'grasp' }],
          },
        ],
      }),
    );
    const c = chartData(html).p!;
    expect(c.x).toEqual([0, 2, 4, 6]);
    expect(c.series.map((s) => s.values)).toEqual([
      [0, 0.25, null, 1],
      [0.33333, null, 0.5, null],
    ]);
    expect(c.series[1]!.dash).toBe(true);
    expect(c.yRange).toEqual([0, 1]);
    expect(c.markers).toEqual([{ x: 2, label: 'grasp' }]);
  });

  it('keeps at most maxPoints points per chart, evenly spread with the ends, and says so', () => {
    const n = 12_000;
    const values = Array.from({ length: n }, (_, i) => i / n);
    const html = renderHtmlReport(doc({ charts: [{ id: 'long', title: 'long', xLabel: 'frame', series: [{ name: 'v', values }] }] }));
    const c = chartData(html).long!;
    expect(c.x).toHaveLength(5000);
    expect(c.x[0]).toBe(0);
    expect(c.x.at(-1)).toBe(n - 1);
    expect(c.series[0]!.values).toHaveLength(5000);
    expect(html).toContain('5000 of 12000 points shown');
    expect(
      chartData(
        renderHtmlReport(doc({ charts: [{ id: 'l', title: 'l', xLabel: 'x', series: [{ name: 'v', values }] }] }), { maxPoints: 100 }),
      ).l!.x,
    ).toHaveLength(100);
  });

  it('keeps at most 64 thumbnails per report and says how many it left out', async () => {
    const thumb = await jpeg();
    const sections: ReportSection[] = [0, 1, 2].map((k) => ({
      id: `ep-${k}`,
      title: `episode ${k}`,
      charts: [],
      gallery: {
        title: 'key frames',
        thumbs: Array.from({ length: 30 }, (_, i) => ({ caption: `frame ${i}`, jpeg: thumb })),
        omitted: k === 0 ? 2 : 0,
      },
    }));
    const html = renderHtmlReport(doc({ sections }));
    expect(html.match(/<img class="sw-thumb"/g)).toHaveLength(64);
    expect(html).toContain('26 thumbnail(s) left out');
    expect(html).toContain('2 more thumbnail(s) left out'); // the caller's own count, episode 0
    expect(html).toContain('26 more thumbnail(s) left out'); // episode 2: 4 of its 30 shown
  });

  it('writes one table row per row, the first cell linking to its section', () => {
    const html = renderHtmlReport(
      doc({
        tables: [
          {
            id: 'episodes',
            title: 'Episodes',
            columns: ['episode', 'final', 'ok'],
            rows: [{ cells: [0, 0.12345, true], link: 'ep-0' }, { cells: [1, null, false] }],
          },
        ],
        sections: [{ id: 'ep-0', title: 'episode 0', charts: [] }],
      }),
    );
    const table = /<table class="sw-table" id="episodes">[\s\S]*?<\/table>/.exec(html)![0];
    expect(table.match(/<tr>/g)).toHaveLength(3); // the head and two rows
    expect(table).toContain('<a href="#ep-0">0</a>');
    expect(table).toContain('0.123');
    expect(table).toContain('<td>no</td>');
    expect(html).toContain('<section class="sw-episode" id="ep-0">');
  });

  it('refuses ids that are not plain or used twice, and series that do not match their x', () => {
    const chart = (id: string) => ({ id, title: 't', xLabel: 'x', series: [{ name: 'v', values: [1] }] });
    expect(() => renderHtmlReport(doc({ charts: [chart('a b')] }))).toThrow(RangeError);
    expect(() => renderHtmlReport(doc({ charts: [chart('a'), chart('a')] }))).toThrow(RangeError);
    expect(() => renderHtmlReport(doc({ charts: [{ ...chart('a'), x: [0, 1] }] }))).toThrow(/1 values for 2 x values/);
  });
});

describe('evenIndices', () => {
  it('is every index up to max, else max indices from first to last', () => {
    expect(evenIndices(4, 10)).toEqual([0, 1, 2, 3]);
    expect(evenIndices(11, 3)).toEqual([0, 5, 10]);
    expect(evenIndices(0, 5)).toEqual([]);
  });
});
