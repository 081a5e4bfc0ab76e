// Reads a live memoryd /api/chat answer with the AI SDK's own parsers and prints what
// they made of it as JSON (tests/integration/chat/test_chat_node_client.py runs it).
//
//   node read-chat.mjs BASE_URL API_KEY PROTOCOL QUESTION
//
// PROTOCOL:
//   data     the data stream protocol v1, read by @ai-sdk/ui-utils' processDataStream
//            (what AI SDK 4's useChat runs), from a v4-style request body;
//   ui       the UI message stream protocol, asked for with Accept: text/event-stream,
//            sent and read as AI SDK 5's useChat does (DefaultChatTransport, then
//            readUIMessageStream);
//   ui-v5    the same without the Accept header: a plain AI SDK 5 client.

import { processDataStream } from "@ai-sdk/ui-utils";
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [baseUrl, apiKey, protocol, question] = process.argv.slice(2);
const api = `${baseUrl}/api/chat`;
const authorization = { Authorization: `Bearer ${apiKey}` };

async function readDataStream() {
  const response = await fetch(api, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authorization },
    body: JSON.stringify({ messages: [{ role: "user", content: question }] }),
  });
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  }
  const seen = { text: "", annotations: [], errors: [], finish: null, messageId: null };
  await processDataStream({
    stream: response.body,
    onStartStepPart(value) {
      seen.messageId = value.messageId;
    },
    onMessageAnnotationsPart(value) {
      seen.annotations.push(...value);
    },
    onTextPart(value) {
      seen.text += value;
    },
    onErrorPart(value) {
      seen.errors.push(value);
    },
    onFinishMessagePart(value) {
      seen.finish = value;
    },
  });
  return {
    ...seen,
    threadId: response.headers.get("supermemory-thread-uuid"),
    contentType: response.headers.get("content-type"),
  };
}

async function readUiMessages(accept) {
  const transport = new DefaultChatTransport({
    api,
    headers: accept ? { ...authorization, Accept: "text/event-stream" } : authorization,
  });
  const stream = await transport.sendMessages({
    chatId: "node-chat",
    trigger: "submit-message",
    messageId: undefined,
    messages: [{ id: "u1", role: "user", parts: [{ type: "text", text: question }] }],
    abortSignal: undefined,
  });
  const errors = [];
  let message = null;
  for await (const snapshot of readUIMessageStream({
    stream,
    onError: (error) => errors.push(String(error)),
  })) {
    message = snapshot;
  }
  if (message === null) {
    throw new Error("the UI message stream held no message");
  }
  return {
    messageId: message.id,
    role: message.role,
    metadata: message.metadata ?? null,
    text: message.parts
      .filter((part) => part.type === "text")
      .map((part) => part.text)
      .join(""),
    annotations: message.parts
      .filter((part) => part.type === "data-annotations")
      .flatMap((part) => part.data),
    partTypes: message.parts.map((part) => part.type),
    errors,
  };
}

const readers = {
  data: readDataStream,
  ui: () => readUiMessages(true),
  "ui-v5": () => readUiMessages(false),
};

if (!(protocol in readers)) {
  console.error(`unknown protocol ${protocol}; use one of ${Object.keys(readers).join(", ")}`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(await readers[protocol]()) + "\n");
