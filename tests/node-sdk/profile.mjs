// Drives memoryd's POST /v4/profile and GET /v3/settings with the official supermemory
// TypeScript SDK. Usage: node profile.mjs BASE_URL API_KEY
// The conversation of tests/integration/sdk/test_sdk_node_memories.py is stored first (tag "user-1").
// Prints one JSON object of what each call answered.
import Supermemory from "supermemory";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new Supermemory({ apiKey, baseURL, maxRetries: 0 });
const out = {};
out.profile = await client.profile({ containerTag: "user-1" });
out.withSearch = await client.profile({ containerTag: "user-1", q: "what instrument is being learnt", include: ["dynamic"] });
out.filtered = await client.profile({
  containerTag: "user-1",
  filters: { AND: [{ key: "source", value: "email" }] },
});
out.settings = await client.settings.get();
console.log(JSON.stringify(out));
