// Drives memoryd's PATCH and DELETE /v4/memories with the official supermemory TypeScript SDK,
// exactly as an app would. Usage: node memories.mjs BASE_URL API_KEY
// The conversation of tests/integration/sdk/test_sdk_node_memories.py is stored first (tag "alice").
// Prints one JSON object of what each call answered.
import Supermemory, { BadRequestError, NotFoundError } from "supermemory";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new Supermemory({ apiKey, baseURL, maxRetries: 0 });
const out = {};
const texts = async (q) =>
  (await client.search.memories({ q, containerTag: "alice", limit: 20 })).results.map((r) => ({
    id: r.id,
    memory: r.memory,
  }));

const [dog] = (await texts("golden retriever puppy")).filter((r) => r.memory.includes("Biscuit"));
out.dogId = dog.id;
out.updated = await client.memories.updateMemory({
  containerTag: "alice",
  id: dog.id,
  newContent: "My new kitten is called Pixel and she only eats salmon pate.",
  metadata: { kind: "pet" },
});
out.afterUpdate = await texts("what does the cat eat");
out.oldWords = await texts("golden retriever Biscuit");
out.forgotten = await client.memories.forget({ containerTag: "alice", id: dog.id, reason: "moved" });
out.afterForget = await texts("kitten Pixel salmon");
try {
  await client.memories.forget({ containerTag: "alice", id: dog.id });
  out.again = 200;
} catch (e) {
  out.again = e instanceof NotFoundError ? 404 : String(e);
}
out.byContent = await client.memories.forget({
  containerTag: "alice",
  content: "The quarterly budget meeting moved to Thursday afternoon.",
});
try {
  await client.memories.updateMemory({ containerTag: "alice", id: "x", newContent: "y", forgetAfter: "2030-01-01T00:00:00Z" });
  out.forgetAfter = 200;
} catch (e) {
  out.forgetAfter = e instanceof BadRequestError ? e.error : String(e);
}
console.log(JSON.stringify(out));
