// Small journeys for the identity tests: message builders, the funnel and
// unique-persons queries they check, and sending a batch so that it is
// queryable before the test goes on.
import assert from 'node:assert/strict';
import { uid } from './server.mjs';

export const V = 'Product Viewed';
export const A = 'Product Added';
export const FUNNEL = { kind: 'funnel', steps: [{ event: V }, { event: A }], window: '7d' };
export const UNIQUES = {
  kind: 'trends',
  series: [{ event: '', math: 'unique_persons' }],
  interval: 'day',
  date_from: '2024-05-01',
  date_to: '2024-05-03',
};

export const track = (ids, event, timestamp) => ({ type: 'track', event, timestamp, messageId: uid('t'), ...ids });
export const identify = (ids, timestamp, traits = {}) => ({ type: 'identify', timestamp, traits, messageId: uid('i'), ...ids });
export const alias = (previousId, userId, timestamp) => ({ type: 'alias', previousId, userId, timestamp, messageId: uid('a') });
export const stepPersons = (f) => f.steps.map((s) => s.persons);

// POST /api/query with an admin token; the answer must be 200.
export async function queryOk(srv, token, body) {
  const res = await srv.post('/api/query', body, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

// Sends a batch and waits until its last event is queryable.
export async function sendVisible(srv, key, token, batch) {
  const res = await srv.post('/v1/batch', { batch }, { key });
  assert.equal(res.status, 200, res.text);
  const last = batch[batch.length - 1].messageId;
  const deadline = Date.now() + 5000;
  for (;;) {
    const doc = { kind: 'events', limit: 1, filters: [{ property: 'messageId', operator: '=', value: last }] };
    const r = await srv.post('/api/query', doc, { headers: { Authorization: `Bearer ${token}` } });
    // 400 "unknown property" until the first event is in
    assert.ok(r.status === 200 || r.status === 400, r.text);
    if (r.status === 200 && r.json.events.length === 1) return;
    assert.ok(Date.now() < deadline, `event ${last} not visible after 5 s`);
    await new Promise((res_) => setTimeout(res_, 20));
  }
}
