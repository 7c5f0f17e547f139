#!/usr/bin/env node
// An independent reader for the archive's Avro object container files: decodes FILE with avsc
// (not libavro, which wrote it) and prints every record as one JSON line, Body as base64 (or
// null). With --header it first prints one line {"codec": ..., "schema": ...} from the file's
// metadata. With --rows the file holds Stream Analytics rows (any record schema): each record
// is printed as a JSON object of its fields, union values unwrapped. Exits 1, with the reason
// on stderr, on anything avsc refuses (bad magic, schema, codec, sync marker or record).
//
//   node read_avro.js [--header] [--rows] FILE
'use strict';

const avro = require('avsc');

const args = process.argv.slice(2);
const header = args[0] === '--header';
if (header) args.shift();
const rows = args[0] === '--rows';
if (rows) args.shift();
if (args.length !== 1) {
  process.stderr.write('usage: read_avro.js [--header] [--rows] FILE\n');
  process.exit(2);
}

// A union value as avsc may hand it over wrapped ({"long": 3}) or not.
function unwrap(value) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && ['boolean', 'long', 'double', 'string'].includes(keys[0])) {
      return value[keys[0]];
    }
  }
  return value;
}

function fail(err) {
  process.stderr.write(`read_avro: ${args[0]}: ${err.message}\n`);
  process.exit(1);
}

avro.createFileDecoder(args[0])
  .on('metadata', (type, codec) => {
    if (header) process.stdout.write(JSON.stringify({codec, schema: type.schema()}) + '\n');
  })
  .on('data', (record) => {
    if (rows) {
      const out = {};
      for (const [k, v] of Object.entries(record)) out[k] = unwrap(v);
      process.stdout.write(JSON.stringify(out) + '\n');
      return;
    }
    process.stdout.write(JSON.stringify({
      EnqueuedTimeUtc: record.EnqueuedTimeUtc,
      Properties: record.Properties,
      SystemProperties: record.SystemProperties,
      Body: record.Body === null ? null : record.Body.toString('base64'),
    }) + '\n');
  })
  .on('error', fail);
