import { describe, expect, it } from 'vitest';
import { PersistMode } from './embedded-kv';

describe("PersistMode (asyncPersist: 'auto')", () => {
  it('stays on the event loop while persists are fast, moves off it once they are slow on average, and back with hysteresis', () => {
    const m = new PersistMode();
    expect(m.async()).toBe(false);
    for (let i = 0; i < 50; i++) m.observe(0.05); // tmpfs-like fsyncs
    expect(m.async()).toBe(false);
    m.observe(5); // one slow sample moves the average only part of the way
    expect(m.async()).toBe(false);
    for (let i = 0; i < 10; i++) m.observe(20); // a busy disk
    expect(m.async()).toBe(true);
    // Between half the threshold and the threshold: stays off the loop (no flapping).
    for (let i = 0; i < 50; i++) m.observe(PersistMode.slowMs * 0.75);
    expect(m.async()).toBe(true);
    for (let i = 0; i < 50; i++) m.observe(0.2);
    expect(m.async()).toBe(false);
  });

  it('a first slow persist is enough to move off the loop', () => {
    const m = new PersistMode();
    m.observe(30);
    expect(m.async()).toBe(true);
  });
});
