// Lint Cypher statements with Neo4j's own front-end (@neo4j-cypher/language-support).
//
// stdin:  JSON array of {"name": string, "query": string}
// stdout: JSON array of {"name": string, "diagnostics": [{message, severity,
//         range, offsets, text, deprecated}]}, in input order.
//
// Used by tests/cypher_lint.py; run `npm ci` first so node_modules/ exists.
import { readFileSync } from 'node:fs';

import {
  lintCypherQuery,
  parseParameters,
  testData,
} from '@neo4j-cypher/language-support';

// Statements carry no explicit `CYPHER n` prefix; Neo4j 5 (and 2025.x) run them
// as Cypher 5, so lint them as that rather than relying on the library default.
const CYPHER_VERSION = 'CYPHER 5';

// Procedures that ship with every Neo4j server. Plugin namespaces (apoc.*,
// gds.*) and enterprise-only ones (cdc.*) are left out on purpose: calling them
// against the project's plain Neo4j would fail at run time, so the linter
// should say so. Extend this list if the project ever installs a plugin.
const BUILT_IN_PROCEDURE_PREFIXES = ['db.', 'dbms.', 'tx.'];

const SEVERITY_NAMES = { 1: 'error', 2: 'warning', 3: 'information', 4: 'hint' };

// The package bundles the function/procedure catalogue of a real Neo4j server
// (exported as testData.mockSchema). Handing the built-in part to the linter
// turns misspelt or unknown functions/procedures and wrong arity into
// diagnostics; with no catalogue at all it silently accepts `coalesc(x)`.
function builtInCatalogue() {
  const functions = {};
  const procedures = {};
  // Every Cypher version the package knows, so a statement that opts into
  // `CYPHER 25` is checked against that version's catalogue, not an empty one.
  for (const [version, registry] of Object.entries(testData.mockSchema.functions ?? {})) {
    functions[version] = Object.fromEntries(
      Object.entries(registry).filter(([, fn]) => fn.isBuiltIn),
    );
  }
  for (const [version, registry] of Object.entries(testData.mockSchema.procedures ?? {})) {
    procedures[version] = Object.fromEntries(
      Object.entries(registry).filter(([name]) =>
        BUILT_IN_PROCEDURE_PREFIXES.some((prefix) => name.startsWith(prefix)),
      ),
    );
  }
  const size = (registry) => Object.keys(registry?.[CYPHER_VERSION] ?? {}).length;
  if (size(functions) === 0 || size(procedures) === 0) {
    // Guard against a package upgrade that drops/renames the catalogue: the
    // linter would then flag every function call, or check none of them.
    throw new Error('language-support no longer ships the testData.mockSchema catalogue');
  }
  return { functions, procedures };
}

function lintOne(query, catalogue) {
  // The parameter check only tests `parameters[name] !== undefined`, so every
  // `$name` the statement references is declared with a placeholder value.
  // Parameters are supplied by the application at run time, not by the file.
  const parameters = Object.fromEntries(
    parseParameters(query, false).map((name) => [name, null]),
  );
  // Deliberately no labels / relationshipTypes / propertyKeys / graphSchema:
  // the library only warns about "not present in the database" when given
  // them, and the schema is created by these very files, so any list here
  // would be either circular or stale. No diagnostic is filtered out.
  const dbSchema = { ...catalogue, parameters, defaultLanguage: CYPHER_VERSION };
  // consoleCommandsEnabled=false: the driver cannot run `:param`/`:use`
  // browser commands, so they must be reported, not accepted.
  const { diagnostics } = lintCypherQuery(query, dbSchema, {
    consoleCommandsEnabled: false,
  });
  return diagnostics.map((d) => ({
    message: d.message,
    severity: SEVERITY_NAMES[d.severity] ?? String(d.severity),
    range: d.range,
    offsets: d.offsets,
    // A hint for humans only: the ANTLR parser counts offsets in code points,
    // the semantic analyser in UTF-16 units, so past an emoji they drift.
    text: query.slice(d.offsets.start, d.offsets.end),
    deprecated: Boolean(d.tags?.includes(2)),
  }));
}

function main() {
  const input = JSON.parse(readFileSync(0, 'utf8'));
  if (!Array.isArray(input)) {
    throw new Error('expected a JSON array of {name, query} on stdin');
  }
  const catalogue = builtInCatalogue();
  const results = input.map(({ name, query }) => {
    if (typeof name !== 'string' || typeof query !== 'string') {
      throw new Error(`bad entry: ${JSON.stringify({ name, query })}`);
    }
    return { name, diagnostics: lintOne(query, catalogue) };
  });
  process.stdout.write(JSON.stringify(results));
}

main();
