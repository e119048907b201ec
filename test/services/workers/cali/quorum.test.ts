import { aggregateVerdicts } from '../../../../services/workers/cali/quorum';
import { extractMemory, memoryFromHash, strategyFor, synthesizeReply } from '../../../../services/workers/cali/reply';

describe('verdict vote', () => {
  test('confidence-weighted majority: two confident cores outweigh three unsure ones', () => {
    const v = aggregateVerdicts([
      { core: 0, label: 'question', confidence: 0.95 },
      { core: 1, label: 'question', confidence: 0.9 },
      { core: 2, label: 'command', confidence: 0.3 },
      { core: 3, label: 'command', confidence: 0.35 },
      { core: 4, label: 'command', confidence: 0.4 },
    ]);
    expect(v).toMatchObject({ label: 'question', received: 5, consensus: 0.4, tie: false, decidedBy: 'weight' });
  });

  test('a tie is broken by the fifth core (the +1), whichever side it is on', () => {
    const base = [
      { core: 0, label: 'greeting', confidence: 0.9 },
      { core: 1, label: 'greeting', confidence: 0.7 },
      { core: 3, label: 'unknown', confidence: 0.5 },
    ];
    const b = aggregateVerdicts([
      ...base,
      { core: 2, label: 'smalltalk', confidence: 0.8 },
      { core: 4, label: 'smalltalk', confidence: 0.8 },
    ]);
    expect(b).toMatchObject({ label: 'smalltalk', tie: true, decidedBy: 'tiebreak-core' });
    const g = aggregateVerdicts([
      { core: 0, label: 'smalltalk', confidence: 0.9 },
      { core: 1, label: 'smalltalk', confidence: 0.7 },
      { core: 3, label: 'unknown', confidence: 0.5 },
      { core: 2, label: 'greeting', confidence: 0.8 },
      { core: 4, label: 'greeting', confidence: 0.8 },
    ]);
    expect(g).toMatchObject({ label: 'greeting', tie: true, decidedBy: 'tiebreak-core' });
  });

  test('without the +1 a tie falls back to the single most confident vote', () => {
    const v = aggregateVerdicts([
      { core: 0, label: 'farewell', confidence: 0.6 },
      { core: 1, label: 'greeting', confidence: 0.4 },
      { core: 2, label: 'greeting', confidence: 0.2 },
    ]);
    expect(v).toMatchObject({ label: 'farewell', tie: true, decidedBy: 'fallback' });
  });

  test('one vote per core even if a verdict is seen twice', () => {
    const v = aggregateVerdicts([
      { core: 0, label: 'command', confidence: 0.9 },
      { core: 0, label: 'command', confidence: 0.9 },
      { core: 1, label: 'question', confidence: 0.95 },
    ]);
    expect(v.received).toBe(2);
    expect(v.label).toBe('question');
  });
});

describe('memory and replies', () => {
  const id = { name: 'CaleonGenesis', version: '1.12' };
  test('a name told in one turn is recalled later', () => {
    const u = extractMemory('My name is ana.');
    expect(u.fields).toEqual({ name: 'Ana' });
    expect(synthesizeReply('remember', 'my name is ana', id, { name: 'Ana', facts: [] }, u)).toBe(
      "Nice to meet you, Ana. I'll remember your name.",
    );
    const mem = memoryFromHash({ name: 'Ana' });
    expect(strategyFor('question', 'what is my name?')).toBe('recall');
    expect(synthesizeReply('recall', 'what is my name?', id, mem, extractMemory('what is my name?'))).toBe('Your name is Ana.');
    expect(synthesizeReply('greet', 'hello', id, mem, { fields: {} })).toBe("Hello, Ana! I'm CaleonGenesis. How can I help?");
  });

  test('facts are remembered under a stable field (redelivery writes the same)', () => {
    const a = extractMemory('remember that I like green tea');
    expect(Object.keys(a.fields)).toEqual(Object.keys(extractMemory('Remember that I like GREEN tea').fields));
    expect(Object.values(a.fields)).toEqual(['I like green tea']);
    expect(extractMemory('what is my name').fields).toEqual({});
    expect(extractMemory("i'm bored").fields).toEqual({});
  });
});
