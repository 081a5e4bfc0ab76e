// Drives memoryd's POST /v4/search options (searchMode, include, threshold, rerank) with the
// official supermemory TypeScript SDK. Usage: node search.mjs BASE_URL API_KEY
// The conversation of tests/integration/sdk/test_sdk_node_memories.py is stored first (tag "user-1").
// Prints one JSON object of what each call answered.
import Supermemory from "supermemory";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new Supermemory({ apiKey, baseURL, maxRetries: 0 });
const out = {};
const q = "what instrument is being learnt";
out.memories = await client.search.memories({ q, containerTag: "user-1", searchMode: "memories", limit: 2 });
out.documents = await client.search.memories({ q, containerTag: "user-1", searchMode: "documents", limit: 2 });
out.include = await client.search.memories({
  q, containerTag: "user-1", limit: 1, include: { documents: true, relatedMemories: true },
});
out.strict = await client.search.memories({ q, containerTag: "user-1", threshold: 0.99 });
out.rerank = await client.search.memories({ q, containerTags: ["user-1"], rerank: true, limit: 1 });
console.log(JSON.stringify(out));
