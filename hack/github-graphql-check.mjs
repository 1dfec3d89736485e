// Checks one GitHub GraphQL request against GitHub's own GraphQL schema, with graphql-js (the
// reference implementation): the npm package @octokit/graphql-schema, installed into the tools
// folder by hack/install-test-tools.sh. The loopback GitHub of tests/loopback_github/ runs it for
// every `POST /graphql`, so a mutation GitHub would refuse fails the test that sent it.
//
// usage: node hack/github-graphql-check.mjs TOOLS_DIR < request.json
//   request.json: {"query": "...", "variables": {...}} (GitHub's GraphQL request body)
// prints: {"errors": ["...", ...]} (empty when the request is valid), exit 0; exit 2 on a usage error.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const tools = process.argv[2];
if (!tools) {
  console.error("usage: node hack/github-graphql-check.mjs TOOLS_DIR < request.json");
  process.exit(2);
}
const pkg = `${tools}/node_modules/@octokit/graphql-schema/package.json`;
const require = createRequire(pkg);
// The graphql-js that @octokit/graphql-schema itself depends on.
const graphql = require(require.resolve("graphql"));
const schema = graphql.buildClientSchema(JSON.parse(readFileSync(new URL("schema.json", `file://${pkg}`), "utf8")));

const errors = [];
let request;
try {
  request = JSON.parse(readFileSync(0, "utf8"));
} catch (e) {
  errors.push(`the body is not JSON: ${e.message}`);
}
if (request) {
  if (typeof request.query !== "string") {
    errors.push("the body has no `query` string");
  } else {
    let doc;
    try {
      doc = graphql.parse(request.query);
    } catch (e) {
      errors.push(`syntax: ${e.message}`);
    }
    if (doc) {
      errors.push(...graphql.validate(schema, doc).map((e) => e.message));
      const ops = doc.definitions.filter((d) => d.kind === "OperationDefinition");
      if (errors.length === 0 && ops.length === 1) {
        const r = graphql.getVariableValues(schema, ops[0].variableDefinitions ?? [], request.variables ?? {});
        if (r.errors) errors.push(...r.errors.map((e) => e.message));
      }
    }
  }
}
process.stdout.write(JSON.stringify({ errors }));
