// Runs one TypeScript answer of a stackgym sandbox and prints its value.
//
// Usage (Node.js 20+, TypeScript loaded through tsx):
//   node --import <tsx loader> run_answer.mjs ANSWER PROVIDER EXPORT ENTRY DATABASE
//
// PROVIDER's EXPORT is called with DATABASE (e.g. a Drizzle client, or every
// table loaded into typed arrays); its result is passed to the answer's
// ENTRY function (or its default export). The last line of stdout is
// MARK followed by JSON: {"value": ..., "type": ...} or {"error": {...}}.
import { pathToFileURL } from "node:url";

const MARK = "__STACKGYM_RESULT__";
const [answerPath, providerPath, providerExport, entry, databasePath] = process.argv.slice(2);

function report(result) {
  process.stdout.write(`\n${MARK}${JSON.stringify(result)}\n`);
}

function describe(error) {
  if (error instanceof Error) {
    return { name: error.name, message: error.message, stack: error.stack ?? "" };
  }
  return { name: "Error", message: String(error), stack: "" };
}

async function main() {
  const answer = await import(pathToFileURL(answerPath).href);
  const compute = typeof answer[entry] === "function" ? answer[entry] : answer.default;
  if (typeof compute !== "function") {
    const exported = Object.keys(answer).join(", ") || "nothing";
    return {
      error: {
        name: "AnswerShapeError",
        message: `the answer must export a function named ${entry} (it exports ${exported})`,
        stack: "",
      },
    };
  }
  const provider = await import(pathToFileURL(providerPath).href);
  const input = await provider[providerExport](databasePath);
  const value = await compute(input);
  if (typeof value === "bigint") return { value: Number(value), type: "number" };
  if (typeof value === "number" && !Number.isFinite(value)) {
    return { value: null, type: "number", text: String(value) };
  }
  return { value: value === undefined ? null : value, type: typeof value };
}

try {
  report(await main());
} catch (error) {
  report({ error: describe(error) });
}
process.exit(0);
