// Validates Kubernetes manifests offline against the API schemas that the
// kubernetes-models package compiles from Kubernetes's OpenAPI document:
// types, enums, formats and required fields of every object, as a cluster's
// API server would check them (unknown fields are not refused, as by
// kubeconform without -strict). Prints the documents as JSON on stdout for
// further checks; exits 1 naming each invalid document.
//
// Usage: node validate.mjs FILE.yaml...
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

let failed = 0;
const checked = [];
for (const file of process.argv.slice(2)) {
  const documents = parseAllDocuments(readFileSync(file, "utf8"));
  for (const document of documents) {
    if (document.errors.length > 0) {
      console.error(`${file}: not YAML: ${document.errors[0].message}`);
      failed++;
      continue;
    }
    const object = document.toJS();
    if (object === null) continue;
    const where = `${file}: ${object.kind ?? "?"} ${object.metadata?.name ?? "?"}`;
    const { apiVersion, kind } = object;
    if (typeof apiVersion !== "string" || typeof kind !== "string") {
      console.error(`${where}: needs apiVersion and kind`);
      failed++;
      continue;
    }
    let Model;
    try {
      Model = (await import(`kubernetes-models/${apiVersion}`))[kind];
    } catch {
      Model = undefined;
    }
    if (Model === undefined) {
      console.error(`${where}: no ${kind} in ${apiVersion}`);
      failed++;
      continue;
    }
    try {
      new Model(object).validate();
      checked.push({ file, object });
    } catch (error) {
      console.error(`${where}: ${error.message}`);
      failed++;
    }
  }
}
console.log(JSON.stringify(checked));
process.exit(failed > 0 ? 1 : 0);
