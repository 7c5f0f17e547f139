#!/usr/bin/env node
// An independent reader for the archive's Avro object container files: decodes FILE with avsc
// (not libavro, which wrote it) and prints every record as one JSON line, Body as base64 (or
// null). With --header it first prints one line {"codec": ..., "schema": ...} from the file's
// metadata. Exits 1, with the reason on stderr, on anything avsc refuses (bad magic, schema,
// codec, sync marker or record).
//
//   node read_avro.js [--header] FILE
'use strict';

const avro = require('avsc');

const args = process.argv.slice(2);
const header = args[0] === '--header';
if (header) args.shift();
if (args.length !== 1) {
  process.stderr.write('usage: read_avro.js [--header] FILE\n');
  process.exit(2);
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
    process.stdout.write(JSON.stringify({
      EnqueuedTimeUtc: record.EnqueuedTimeUtc,
      Properties: record.Properties,
      SystemProperties: record.SystemProperties,
      Body: record.Body === null ? null : record.Body.toString('base64'),
    }) + '\n');
  })
  .on('error', fail);
