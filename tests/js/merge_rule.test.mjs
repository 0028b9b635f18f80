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
      results { status refusal { code reason } record { version fields crdtState } } } }`,
  { input: { deviceId, changes: [{ offlineId: `js-${++offline}`, recordType: 'OUTLET', operation: 'UPSERT', ...change }] } })
  return data.pushChanges.results[0]
}

async function serverOutlet (token, recordId) {
  const data = await graphql(token, `query($id: ID!) { record(recordType: OUTLET, recordId: $id) {
      version fields crdtState } }`, { id: recordId })
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
    const before = { a: Y.encodeStateVector(docA), b: Y.encodeStateVector(docB) }
    docA.getMap('fields').set('name', 'Kedai from A') // captured 30 s ago: the latest, so it wins
    docB.getMap('fields').set('name', 'Kedai from B') // captured 60 s ago
    docB.getMap('fields').set('phone', '+60 5 555')
    const changes = {
      a: [DEVICE_A_TOKEN, 'js-a', { recordId, capturedAt: at(30), crdtUpdate: base64(Y.encodeStateAsUpdate(docA, before.a)) }],
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
      Y.applyUpdate(doc, bytes(server.crdtState))
      assert.deepEqual(scalarFields(doc), withoutTagsAndNotes(server.fields))
    }
  })
}
