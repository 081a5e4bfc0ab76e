// Drives memoryd's /v3/documents and /v3/search with the official supermemory TypeScript SDK,
// exactly as an app would. Usage: node documents.mjs BASE_URL API_KEY
// Prints one JSON object of what each call answered (tests/integration/sdk/test_sdk_node_documents.py).
import Supermemory, { NotFoundError, UnprocessableEntityError, toFile } from "supermemory";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new Supermemory({ apiKey, baseURL, maxRetries: 0 });
const out = {};

const added = await client.add({
  content: "Our cat Miso loves sleeping on the warm radiator in winter.",
  containerTag: "user_1",
  metadata: { kind: "note" },
});
out.added = added;
const second = await client.documents.add({
  content: "The quarterly budget meeting moved to Thursday.",
  customId: "budget-1",
  containerTag: "user_1",
});
out.second = second;

const doc = await client.documents.get(added.id);
out.get = { id: doc.id, customId: doc.customId, content: doc.content, status: doc.status,
  containerTags: doc.containerTags, memories: (doc.memories ?? []).map((m) => m.memory) };
out.getByCustomId = (await client.documents.get("budget-1")).id;

const page1 = await client.documents.list({ limit: 1, page: 1, sort: "createdAt", order: "asc" });
const page2 = await client.documents.list({ limit: 1, page: 2, sort: "createdAt", order: "asc" });
out.list = { ids: [...page1.memories, ...page2.memories].map((m) => m.id),
  pagination: page1.pagination };
out.filtered = (await client.documents.list({
  filters: { AND: [{ key: "kind", value: "note" }] },
})).memories.map((m) => m.id);

const found = await client.search.documents({ q: "where does the cat sleep?", containerTag: "user_1", limit: 1 });
out.searchDocuments = found.results.map((r) => ({ documentId: r.documentId, chunks: r.chunks }));
const executed = await client.search.execute({ q: "when is the budget meeting?", limit: 1 });
out.searchExecute = executed.results.map((r) => r.documentId);

try {
  await client.add({ content: "https://example.com/article" });
  out.url = "accepted";
} catch (err) {
  out.url = err instanceof UnprocessableEntityError ? { status: err.status, error: err.error } : String(err);
}

// The README's uploads: a File, and bytes through toFile.
const fromFile = await client.documents.uploadFile({
  file: new File(["The launch date is the twelfth of October."], "launch.txt", { type: "text/plain" }),
  containerTag: "files",
});
const fromBytes = await client.documents.uploadFile({
  file: await toFile(Buffer.from("Pancakes need flour, milk and two eggs."), "pancakes.txt"),
  containerTag: "files",
});
out.uploads = [fromFile, fromBytes];
out.uploadSearch = (await client.search.documents({ q: "when is the launch?", containerTag: "files", limit: 1 }))
  .results.map((r) => r.documentId);
const { data: viaWith, response: raw } = await client.add({ content: "content" }).withResponse();
out.withResponse = { id: viaWith.id, status: raw.status, requestId: raw.headers.get("x-request-id") };
for (const u of [fromFile, fromBytes, viaWith]) await client.documents.delete(u.id);

await client.documents.delete(added.id);
try {
  await client.documents.get(added.id);
  out.afterDelete = "still there";
} catch (err) {
  out.afterDelete = err instanceof NotFoundError ? 404 : String(err);
}
out.remaining = (await client.documents.list({})).memories.map((m) => m.id);
console.log(JSON.stringify(out));
