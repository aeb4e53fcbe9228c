// Keyframe files for `stageward annotate` (datasets/keyframes.ts): CSV and JSON give the same spans,
// covering each episode with inclusive ends; seconds become round(seconds * fps); every refusal has
// its code and names the file with the line (CSV) or episode (JSON), quoting user text cut short.

import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../core/random.ts';
import type { ErrorCode } from '../../core/errors.ts';
import { keyframeFormat, parseKeyframes, splitCsvLine, type KeyframeFormat, type KeyframeInput } from '../../datasets/keyframes.ts';
import { refusal } from '../helpers.ts';

const LENGTHS = new Map([
  [0, 50],
  [1, 40],
  [2, 30],
]);
const input = (file: string, more: Partial<KeyframeInput> = {}): KeyframeInput => ({ file, lengths: LENGTHS, fps: 10, ...more });
const csv = (text: string, more: Partial<KeyframeInput> = {}) => parseKeyframes(text, 'csv', input('keys.csv', more));
const json = (doc: unknown, more: Partial<KeyframeInput> = {}) =>
  parseKeyframes(typeof doc === 'string' ? doc : JSON.stringify(doc), 'json', input('keys.json', more));

/** The refusal of parsing `text`, checked for its code and for naming the file and `where`. */
function refused(format: KeyframeFormat, text: string, code: ErrorCode, where: string, more: Partial<KeyframeInput> = {}) {
  const err = refusal(() => parseKeyframes(text, format, input(`keys.${format}`, more)));
  expect(err.code, err.message).toBe(code);
  expect(err.message).toContain(`keys.${format}`);
  expect(err.message).toContain(where);
  return err.message;
}

const EXPECTED = new Map([
  [
    0,
    [
      { name: 'reach', start: 0, end: 30 },
      { name: 'grasp', start: 31, end: 39 },
      { name: 'lift', start: 40, end: 49 },
    ],
  ],
  [
    1,
    [
      { name: 'reach', start: 0, end: 9 },
      { name: 'lift', start: 10, end: 19 },
      { name: 'reach', start: 20, end: 39 },
    ],
  ],
  [2, [{ name: 'reach', start: 0, end: 29 }]],
]);

describe('keyframe files', () => {
  it('CSV: one row per stage boundary; each stage runs to the frame before the next, the last to the episode end', () => {
    const text = [
      '\uFEFF# keyframes of the pick dataset',
      'episode,stage,start',
      '',
      '1, reach ,0',
      '0,reach,0\r',
      '0,"grasp",31',
      '   # a note',
      '1,lift,10',
      '0,lift,40',
      '1,reach,20',
      '2,reach,0',
      '',
    ].join('\n');
    const k = csv(text);
    expect(k.episodes).toEqual(EXPECTED);
    expect([...k.episodes.keys()]).toEqual([0, 1, 2]);
    // first appearance over episodes in index order, not file order
    expect(k.stages).toEqual(['reach', 'grasp', 'lift']);
  });

  it('JSON: the same spans, with the same stage order', () => {
    const k = json({
      episodes: {
        '2': [{ stage: 'reach', start: 0 }],
        '0': [
          { stage: 'reach', start: 0 },
          { stage: 'grasp', start: 31 },
          { stage: 'lift', start: 40 },
        ],
        '1': [
          { stage: 'reach', start: 0 },
          { stage: 'lift', start: 10 },
          { stage: 'reach', start: 20 },
        ],
      },
    });
    expect(k.episodes).toEqual(EXPECTED);
    expect(k.stages).toEqual(['reach', 'grasp', 'lift']);
  });

  it('start_s: seconds become round(seconds * fps), in CSV (alone or beside start) and in JSON', () => {
    const spans = (k: ReturnType<typeof csv>) => k.episodes.get(0)!.map((s) => [s.start, s.end]);
    const fps30 = { fps: 30, partial: true };
    // 1.04 s = frame 31.2 -> 31; 1.35 s = 40.5 -> 41 (half up, as the reader rounds times); 0.016 s = 0.48 -> 0
    expect(
      spans(csv('episode,stage,start_s\n0,reach,0.016\n0,grasp,1.04\n0,lift,1.35', { ...fps30, lengths: new Map([[0, 60]]) })),
    ).toEqual([
      [0, 30],
      [31, 40],
      [41, 59],
    ]);
    expect(spans(csv('episode,stage,start,start_s\n0,reach,0,\n0,grasp,,3.1\n0,lift,40,', { partial: true }))).toEqual([
      [0, 30],
      [31, 39],
      [40, 49],
    ]);
    const k = json(
      {
        episodes: {
          '0': [
            { stage: 'reach', start_s: 0 },
            { stage: 'grasp', start_s: 3.1 },
            { stage: 'lift', start: 40 },
          ],
        },
      },
      { partial: true },
    );
    expect(spans(k)).toEqual([
      [0, 30],
      [31, 39],
      [40, 49],
    ]);
    expect(
      csv('Episode,STAGE,Start_S\n0,reach,0\n0,grasp,.5\n0,lift,4e0', { partial: true })
        .episodes.get(0)!
        .map((s) => s.start),
    ).toEqual([0, 5, 40]);
  });

  it('seeded random keyframes: CSV and JSON agree and the spans tile every episode exactly', () => {
    const rng = new SeededRandom(20260);
    for (let trial = 0; trial < 40; trial++) {
      const lengths = new Map(Array.from({ length: rng.int(1, 6) }, (_, e) => [e * 3, rng.int(1, 120)] as [number, number]));
      const doc: Record<string, { stage: string; start: number }[]> = {};
      for (const [e, T] of lengths) {
        const starts = [...new Set([0, ...Array.from({ length: rng.int(0, 5) }, () => rng.int(0, T - 1))])].sort((a, b) => a - b);
        doc[String(e)] = starts.map((start) => ({ stage: `s${rng.int(0, 3)}`, start }));
      }
      // rows of different episodes interleave at random; one episode's rows stay in time order
      const pending = Object.entries(doc).map(([e, list]) => list.map((k) => `${e},${k.stage},${k.start}`));
      const ordered: string[] = [];
      while (pending.some((p) => p.length > 0)) {
        const left = pending.filter((p) => p.length > 0);
        ordered.push(left[rng.int(0, left.length - 1)]!.shift()!);
      }
      const fromCsv = parseKeyframes(`episode,stage,start\n${ordered.join('\n')}`, 'csv', {
        file: 'k.csv',
        lengths,
        fps: 10,
      });
      const fromJson = parseKeyframes(JSON.stringify({ episodes: doc }), 'json', { file: 'k.json', lengths, fps: 10 });
      expect(fromJson).toEqual(fromCsv);
      for (const [e, T] of lengths) {
        const spans = fromCsv.episodes.get(e)!;
        expect(spans[0]!.start).toBe(0);
        expect(spans.at(-1)!.end).toBe(T - 1);
        for (let i = 1; i < spans.length; i++) expect(spans[i]!.start).toBe(spans[i - 1]!.end + 1);
        expect(spans.map((s) => s.name)).toEqual(doc[String(e)]!.map((k) => k.stage));
      }
    }
  });

  it('splits CSV lines with quotes, "" for a quote and commas inside quotes', () => {
    expect(splitCsvLine('0, "pick, then place" ,12')).toEqual(['0', 'pick, then place', '12']);
    expect(splitCsvLine('1,"say ""hi""",3')).toEqual(['1', 'say "hi"', '3']);
    expect(splitCsvLine('a,,b,')).toEqual(['a', '', 'b', '']);
    expect(splitCsvLine('0,"open')).toBeNull();
    expect(csv('episode,stage,start\n0,"pick, then place",0', { partial: true }).stages).toEqual(['pick, then place']);
  });

  it('chooses the format by extension and refuses others', () => {
    expect(keyframeFormat('a/b/keys.CSV')).toBe('csv');
    expect(keyframeFormat('keys.json')).toBe('json');
    for (const file of ['keys.txt', 'keys', 'keys.csv.bak', 'keys.jsonl']) {
      const err = refusal(() => keyframeFormat(file));
      expect(err.code).toBe('SW_ERR_ANNOTATION_FILE');
      expect(err.message).toContain(file);
      expect(err.message).toContain('.csv or .json');
    }
  });

  it('CSV refusals name the file and line', () => {
    refused('csv', '# only a comment\n\n', 'SW_ERR_ANNOTATION_FILE', 'no header line');
    expect(refused('csv', 'episode,stage,strat\n0,reach,0', 'SW_ERR_ANNOTATION_FILE', 'line 1')).toContain('unknown column "strat"');
    refused('csv', 'episode,stage\n0,reach', 'SW_ERR_ANNOTATION_FILE', 'line 1: the header must name episode, stage, and start');
    refused('csv', 'episode,stage,start,start\n0,reach,0,0', 'SW_ERR_ANNOTATION_FILE', 'line 1: the header names start twice');
    refused('csv', 'episode,stage,start\n# x\n0,reach', 'SW_ERR_ANNOTATION_FILE', 'line 3: has 2 fields, the header has 3');
    refused('csv', 'episode,stage,start\n0,"reach,0', 'SW_ERR_ANNOTATION_FILE', 'line 2: a quoted field is not closed');
    expect(refused('csv', 'episode,stage,start\nzero,reach,0', 'SW_ERR_ANNOTATION_FILE', 'line 2')).toContain(
      'episode "zero" is not a whole number',
    );
    expect(refused('csv', 'episode,stage,start\n-1,reach,0', 'SW_ERR_ANNOTATION_FILE', 'line 2')).toContain('episode "-1"');
    expect(refused('csv', 'episode,stage,start\n0,reach,2.5', 'SW_ERR_ANNOTATION_FILE', 'line 2')).toContain(
      'start "2.5" is not a whole number',
    );
    expect(refused('csv', 'episode,stage,start_s\n0,reach,soon', 'SW_ERR_ANNOTATION_FILE', 'line 2')).toContain('start_s "soon"');
    refused('csv', 'episode,stage,start_s\n0,reach,-0.5', 'SW_ERR_ANNOTATION_FILE', 'line 2');
    refused('csv', 'episode,stage,start,start_s\n0,reach,0,0', 'SW_ERR_ANNOTATION_FILE', 'line 2: give the start in exactly one of start');
    refused('csv', 'episode,stage,start,start_s\n0,reach,,', 'SW_ERR_ANNOTATION_FILE', 'line 2: give the start in exactly one of start');
  });

  it('rule refusals: first start 0, increasing starts inside the episode, stage names, known episodes', () => {
    const h = 'episode,stage,start\n';
    expect(refused('csv', `${h}0,reach,5`, 'SW_ERR_ANNOTATION_INVALID', 'line 2: episode 0')).toContain(
      'first keyframe is at start 5; it must be 0',
    );
    expect(refused('csv', `${h}0,reach,0\n1,reach,0\n0,grasp,20\n0,lift,20`, 'SW_ERR_ANNOTATION_INVALID', 'line 5: episode 0')).toContain(
      "start 20 is not after the previous keyframe's frame 20 (line 4)",
    );
    refused('csv', `${h}0,reach,0\n0,grasp,20\n0,lift,10`, 'SW_ERR_ANNOTATION_INVALID', 'line 4', { partial: true });
    expect(refused('csv', `${h}2,reach,0\n2,grasp,30`, 'SW_ERR_ANNOTATION_INVALID', 'line 3: episode 2', { partial: true })).toContain(
      "start 30 is past the episode's last frame 29",
    );
    // seconds that round onto the previous keyframe's frame, and past the end, say both
    expect(
      refused('csv', 'episode,stage,start_s\n0,reach,0\n0,grasp,1.01\n0,lift,0.96', 'SW_ERR_ANNOTATION_INVALID', 'line 4', {
        partial: true,
      }),
    ).toContain('start_s 0.96 (frame 10 at 10 fps) is not after');
    expect(
      refused('csv', 'episode,stage,start_s\n2,reach,0\n2,lift,2.96', 'SW_ERR_ANNOTATION_INVALID', 'line 3', { partial: true }),
    ).toContain('start_s 2.96 (frame 30 at 10 fps) is past');
    refused('csv', `${h}0,reach,0\n0," ",20`, 'SW_ERR_ANNOTATION_INVALID', 'line 3: episode 0: the stage name is empty', { partial: true });
    refused('csv', `${h}0,reach,0\n7,reach,0`, 'SW_ERR_DATASET_EPISODE', 'line 3: the dataset has no episode 7');
    refused('csv', h, 'SW_ERR_ANNOTATION_MISSING', 'no keyframes', { partial: true });
    // whole-number stage names would be reordered as JSON keys
    refused('csv', `${h}0,reach,0\n0,1,20`, 'SW_ERR_ANNOTATION_INVALID', 'sort first among JSON keys', { partial: true });
    expect(csv(`${h}0,1,0\n0,2,20`, { partial: true }).stages).toEqual(['1', '2']);
  });

  it('episodes the file leaves out are refused, listing up to 10, unless partial', () => {
    expect(
      refused('csv', 'episode,stage,start\n1,reach,0', 'SW_ERR_ANNOTATION_MISSING', "no keyframes for 2 of the dataset's 3 episodes: 0, 2"),
    ).toContain('partial (--partial)');
    const many = new Map(Array.from({ length: 25 }, (_, e) => [e, 10] as [number, number]));
    const message = refused('csv', 'episode,stage,start\n3,reach,0', 'SW_ERR_ANNOTATION_MISSING', '24 of', { lengths: many });
    expect(message).toContain('0, 1, 2, 4, 5, 6, 7, 8, 9, 10, ... (24 in all)');
    expect(message).not.toContain(' 11');
    const k = csv('episode,stage,start\n1,reach,0', { partial: true });
    expect([...k.episodes.keys()]).toEqual([1]);
  });

  it('JSON refusals name the file and episode', () => {
    const doc = (episodes: unknown) => JSON.stringify({ episodes });
    expect(refused('json', '{"episodes": {', 'SW_ERR_ANNOTATION_FILE', 'not valid JSON')).toMatch(/not valid JSON \(.{1,80}\)$/);
    refused('json', '[1, 2]', 'SW_ERR_ANNOTATION_FILE', 'must be an object {"episodes"');
    refused('json', '{"episodes": []}', 'SW_ERR_ANNOTATION_FILE', 'must be an object {"episodes"');
    refused('json', JSON.stringify({ episodes: {}, fps: 30 }), 'SW_ERR_ANNOTATION_FILE', 'unknown key "fps"');
    refused('json', doc({ first: [] }), 'SW_ERR_ANNOTATION_FILE', 'episode key "first" is not a whole number');
    refused('json', doc({ '0': { stage: 'reach', start: 0 } }), 'SW_ERR_ANNOTATION_FILE', 'episode 0 must be a list');
    refused('json', doc({ '0': ['reach'] }), 'SW_ERR_ANNOTATION_FILE', 'episode 0, keyframe 1: must be an object');
    refused(
      'json',
      doc({ '0': [{ stage: 'reach', start: 0, end: 9 }] }),
      'SW_ERR_ANNOTATION_FILE',
      'episode 0, keyframe 1: unknown key "end"',
    );
    refused('json', doc({ '0': [{ stage: 3, start: 0 }] }), 'SW_ERR_ANNOTATION_FILE', 'episode 0, keyframe 1: "stage" must be a string');
    refused('json', doc({ '0': [{ stage: 'reach' }] }), 'SW_ERR_ANNOTATION_FILE', 'give exactly one of "start" (frames) and "start_s"');
    refused('json', doc({ '0': [{ stage: 'reach', start: 0, start_s: 0 }] }), 'SW_ERR_ANNOTATION_FILE', 'give exactly one of');
    refused(
      'json',
      doc({
        '0': [
          { stage: 'reach', start: 0 },
          { stage: 'lift', start: 1.5 },
        ],
      }),
      'SW_ERR_ANNOTATION_FILE',
      'episode 0, keyframe 2: "start" 1.5',
    );
    refused('json', doc({ '0': [{ stage: 'reach', start: '0' }] }), 'SW_ERR_ANNOTATION_FILE', '"start" "0" is not a whole number');
    refused('json', doc({ '0': [{ stage: 'reach', start_s: -1 }] }), 'SW_ERR_ANNOTATION_FILE', '"start_s" -1 is not a number of seconds');
    refused(
      'json',
      doc({ '0': [{ stage: 'reach', start: 3 }] }),
      'SW_ERR_ANNOTATION_INVALID',
      'episode 0, keyframe 1: episode 0: the first keyframe',
    );
    refused(
      'json',
      doc({ '9': [{ stage: 'reach', start: 0 }] }),
      'SW_ERR_DATASET_EPISODE',
      'episode 9, keyframe 1: the dataset has no episode 9',
    );
    refused('json', doc({}), 'SW_ERR_ANNOTATION_MISSING', 'no keyframes', { partial: true });
  });

  it('quotes user text cut short, with its length', () => {
    const long = 'x'.repeat(500);
    for (const message of [
      refused('csv', `episode,stage,${long}\n0,a,0`, 'SW_ERR_ANNOTATION_FILE', 'line 1'),
      refused('csv', `episode,stage,start\n0,a,${long}`, 'SW_ERR_ANNOTATION_FILE', 'line 2'),
      refused('json', JSON.stringify({ episodes: { '0': [{ stage: 'a', start: long }] } }), 'SW_ERR_ANNOTATION_FILE', 'keyframe 1'),
      refused('json', JSON.stringify({ episodes: { [long]: [] } }), 'SW_ERR_ANNOTATION_FILE', 'episode key'),
    ]) {
      expect(message).toMatch(/\.\.\. \(50\d characters\)/);
      expect(message).not.toContain('x'.repeat(81));
      expect(message.length).toBeLessThan(300);
    }
  });
});
