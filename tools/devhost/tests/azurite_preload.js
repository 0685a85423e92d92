// Writes table entities straight into an Azurite data folder through Azurite's own persistence layer
// (LokiTableMetadataStore, NormalizedEntity), before that Azurite starts. Azurite answers each insert over
// HTTP with a scan of every row sharing the new row's RowKey, so 10,000 one-row partitions cost minutes of
// its CPU that way; loaded from its own database file they cost about a second. See azurite_preload.py.
//
// Usage: node azurite_preload.js <azurite package folder> <data folder>
// stdin: {"account": "...", "tables": {"<name>": [<entity as the Tables REST API takes it>, ...]}}
"use strict";
const fs = require("fs");
const path = require("path");

const [azurite, location] = process.argv.slice(2);
const load = (rel) => require(path.join(azurite, "dist", "src", rel));
const Store = load("table/persistence/LokiTableMetadataStore.js").default;
const { NormalizedEntity } = load("table/entity/NormalizedEntity.js");
const { DEFAULT_TABLE_LOKI_DB_PATH } = load("table/utils/constants.js");
const { newTableEntityEtag } = load("table/utils/utils.js");
const { truncatedISO8061Date } = load("common/utils/utils.js");

async function main() {
  const { account, tables } = JSON.parse(fs.readFileSync(0, "utf8"));
  const store = new Store(path.join(location, DEFAULT_TABLE_LOKI_DB_PATH), false);
  await store.init();
  const modified = truncatedISO8061Date(new Date(), true, true);
  for (const [table, entities] of Object.entries(tables)) {
    await store.createTable({}, { account, table });
    const collection = store.getEntityCollection(account, table, {});
    for (const properties of entities) {
      // The shape TableHandler.createPersistedEntity gives an inserted entity, normalised the same way.
      const entity = { PartitionKey: properties.PartitionKey, RowKey: properties.RowKey, properties,
                       lastModifiedTime: modified, eTag: newTableEntityEtag(modified) };
      new NormalizedEntity(entity).normalize();
      collection.insert(entity);
    }
  }
  await store.close();  // saves the database file
}

main().catch((err) => { console.error(err && err.stack || String(err)); process.exit(1); });
