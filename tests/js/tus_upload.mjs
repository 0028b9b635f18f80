// One tus-js-client upload, as a phone app would run it, for tests/e2e/test_tus_clients.py.
// node tus_upload.mjs <endpoint> <token> <file> <json options>
//   options: {chunkSize, withData (creation-with-upload), sha256, attachmentId, uploadUrl, noRetry}
// Prints one JSON line: {url, done, error}.
import { readFileSync } from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, token, path, raw] = process.argv.slice(2);
const options = JSON.parse(raw || "{}");
const data = readFileSync(path);
const metadata = { filename: "shelf.jpg" };
if (options.sha256) metadata.sha256 = options.sha256;
if (options.attachmentId) metadata.attachmentId = options.attachmentId;

const result = await new Promise((resolve) => {
  const upload = new tus.Upload(data, {
    endpoint,
    uploadUrl: options.uploadUrl || null,
    headers: { Authorization: `Bearer ${token}` },
    metadata,
    chunkSize: options.chunkSize || Infinity,
    uploadDataDuringCreation: Boolean(options.withData),
    retryDelays: options.noRetry ? [] : [0, 300, 1000],
    storeFingerprintForResuming: false,
    onSuccess() {
      resolve({ url: upload.url, done: true });
    },
    onError(error) {
      resolve({ url: upload.url, done: false, error: String(error).slice(0, 300) });
    },
  });
  upload.start();
});
console.log(JSON.stringify(result));
