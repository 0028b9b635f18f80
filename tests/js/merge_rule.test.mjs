// Real `yjs` documents (random 32-bit client ids, as every Yjs app has) against a running FieldSync.
// Run by tests/e2e/test_yjs_interop.py, which starts the server and passes its address and device tokens.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'

const { FIELDSYNC_URL, MANAGER_TOKEN, DEVICE_A_TOKEN, DEVICE_B_TOKEN, DEVICE_C_TOKEN } = process.env
const base64 = (bytes) => Buffer.from(bytes).toString('base64')
const bytes = (text) => new Uint8Array(Buffer.from(text, 'base64'))
const at = (secondsAgo) => new Date(Date.now() - secondsAgo * 1000).toISOString()
let offline = 0

async function graphql (token, query, variables) {
  const response = await fetch(`${FIELDSYNC_URL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables })
  })
  const body = await response.json()
  assert.equal(body.errors, undefined, JSON.stringify(body.errors))
  return body.data
}

async function push (token, deviceId, change) {
  const data = await graphql(token, `mutation($input: PushInput!) { pushChanges(input: $input) {
      results { status refusal { code reason } record { version fields crdtState crdtEpoch } } } }`,
  { input: { deviceId, changes: [{ offlineId: `js-${++offline}`, recordType: 'OUTLET', operation: 'UPSERT', ...change }] } })
  return data.pushChanges.results[0]
}

async function serverOutlet (token, recordId) {
  const data = await graphql(token, `query($id: ID!) { record(recordType: OUTLET, recordId: $id) {
      version fields crdtState crdtEpoch } }`, { id: recordId })
  return data.record
}

function scalarFields (doc) {
  return doc.getMap('fields').toJSON()
}

function withoutTagsAndNotes (fields) {
  const { tags, notes, ...scalars } = fields
  return scalars
}

for (const [label, order] of [['Yjs A first', ['a', 'patch', 'b']], ['Yjs B first', ['b', 'patch', 'a']]]) {
  test(`two yjs documents and a plain patch converge to the rule's answer (${label})`, async () => {
    const recordId = `js-outlet-${label.replace(/\W/g, '')}`
    const created = await push(DEVICE_A_TOKEN, 'js-a', { recordId, capturedAt: at(3600), fields: { name: 'Base', city: 'Ipoh' } })
    assert.equal(created.status, 'MERGED')

    const docA = new Y.Doc()
    const docB = new Y.Doc()
    for (const doc of [docA, docB]) Y.applyUpdate(doc, bytes(created.record.crdtState))
    // A queues the update its edit's transaction produced (Yjs' update event), B the edit with its whole delete set.
    const queuedByA = []
    docA.on('update', (update, origin) => { if (origin !== 'server') queuedByA.push(update) })
    const before = { b: Y.encodeStateVector(docB) }
    docA.getMap('fields').set('name', 'Kedai from A') // captured 30 s ago: the latest, so it wins
    docB.getMap('fields').set('name', 'Kedai from B') // captured 60 s ago
    docB.getMap('fields').set('phone', '+60 5 555')
    assert.equal(queuedByA.length, 1)
    const changes = {
      a: [DEVICE_A_TOKEN, 'js-a', { recordId, capturedAt: at(30), crdtUpdate: base64(queuedByA[0]) }],
      b: [DEVICE_B_TOKEN, 'js-b', { recordId, capturedAt: at(60), crdtUpdate: base64(Y.encodeStateAsUpdate(docB, before.b)) }],
      patch: [DEVICE_C_TOKEN, 'js-c', { recordId, capturedAt: at(45), fields: { name: 'Kedai from a patch', city: 'Taiping' } }]
    }
    for (const name of order) {
      const result = await push(...changes[name])
      assert.equal(result.status, 'MERGED', JSON.stringify(result))
    }

    const server = await serverOutlet(MANAGER_TOKEN, recordId)
    assert.equal(server.fields.name, 'Kedai from A')
    assert.equal(server.fields.phone, '+60 5 555')
    assert.equal(server.fields.city, 'Taiping')
    for (const doc of [docA, docB]) {
      Y.applyUpdate(doc, bytes(server.crdtState), 'server')
      assert.deepEqual(scalarFields(doc), withoutTagsAndNotes(server.fields))
    }
  })
}

test('a phone offline across a compaction: its queued edits count, then it starts over on the new epoch', async () => {
  // The server runs with FIELDSYNC_CRDT_COMPACT_BYTES=512, so a few dozen manager edits end the outlet's epoch.
  const recordId = 'js-outlet-compacted'
  const created = await push(DEVICE_A_TOKEN, 'js-a', { recordId, capturedAt: at(3600), fields: { name: 'Base', city: 'Ipoh' } })
  const phone = new Y.Doc()
  Y.applyUpdate(phone, bytes(created.record.crdtState))
  const epoch = created.record.crdtEpoch
  const before = Y.encodeStateVector(phone)
  phone.getMap('fields').set('phone', '+60 5 111') // offline, on the first epoch
  phone.getMap('tags').set('vip', true)
  phone.getText('notes').insert(0, 'Back door.')
  const queued = Y.encodeStateAsUpdate(phone, before)

  for (let i = 0; i < 70; i++) {
    const fields = i % 2 ? { city: `City ${i}` } : { name: `Kedai ${i}` }
    await graphql(MANAGER_TOKEN, `mutation($input: WriteRecordInput!) { writeRecord(input: $input) { status } }`,
      { input: { recordType: 'OUTLET', recordId, fields } })
  }
  const compacted = await serverOutlet(MANAGER_TOKEN, recordId)
  assert.ok(compacted.crdtEpoch > epoch, `epoch ${compacted.crdtEpoch}`)

  const merged = await push(DEVICE_A_TOKEN, 'js-a', { recordId, capturedAt: at(20), crdtUpdate: base64(queued), crdtEpoch: epoch })
  assert.equal(merged.status, 'MERGED', JSON.stringify(merged))
  assert.equal(merged.record.crdtEpoch, compacted.crdtEpoch)
  assert.deepEqual([merged.record.fields.phone, merged.record.fields.name, merged.record.fields.city],
    ['+60 5 111', 'Kedai 68', 'City 69'])
  assert.deepEqual([merged.record.fields.tags, merged.record.fields.notes], [['vip'], 'Back door.'])

  const restarted = new Y.Doc() // a new document: a new client id
  Y.applyUpdate(restarted, bytes(merged.record.crdtState))
  const sv = Y.encodeStateVector(restarted)
  restarted.getMap('fields').set('phone', '+60 5 222')
  const next = await push(DEVICE_A_TOKEN, 'js-a', {
    recordId, capturedAt: at(1), crdtUpdate: base64(Y.encodeStateAsUpdate(restarted, sv)), stateVector: base64(sv), crdtEpoch: merged.record.crdtEpoch
  })
  assert.equal(next.status, 'MERGED', JSON.stringify(next))
  Y.applyUpdate(restarted, bytes(next.record.crdtState))
  assert.deepEqual(scalarFields(restarted), withoutTagsAndNotes(next.record.fields))
  assert.equal(restarted.getText('notes').toString(), next.record.fields.notes)
  assert.ok(bytes(next.record.crdtState).length < 512, 'the answer carries only what the phone lacks')
})
