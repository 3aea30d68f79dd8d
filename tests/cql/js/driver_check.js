// A third independent client: the Node.js cassandra-driver (DataStax, npm) against a dynatable
// cluster. Usage: node driver_check.js HOST[,HOST...] PORT KEYSPACE
// Prints one JSON object with what it saw; tests/cql/test_nodejs_driver.py checks it.
'use strict';
const cassandra = require('cassandra-driver');

async function main() {
  const [hosts, port, ks] = process.argv.slice(2);
  const client = new cassandra.Client({
    contactPoints: hosts.split(','), localDataCenter: 'datacenter1',
    protocolOptions: { port: Number(port) },
    policies: { loadBalancing: new cassandra.policies.loadBalancing.TokenAwarePolicy(
      new cassandra.policies.loadBalancing.DCAwareRoundRobinPolicy('datacenter1')) },
    queryOptions: { consistency: cassandra.types.consistencies.quorum },
  });
  await client.connect();
  const out = { protocolVersion: client.controlConnection.protocolVersion,
                hosts: client.hosts.values().map(h => h.address).sort() };
  await client.execute(`CREATE KEYSPACE ${ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}`);
  await client.execute(`CREATE TABLE ${ks}.t (k int, c int, v text, PRIMARY KEY (k, c))`);
  const insert = `INSERT INTO ${ks}.t (k, c, v) VALUES (?, ?, ?)`;
  const writes = [];
  for (let k = 0; k < 5; k++) {
    for (let c = 0; c < 20; c++) writes.push(client.execute(insert, [k, c, `v${k}.${c}`], { prepare: true }));
  }
  await Promise.all(writes);
  const one = await client.execute(`SELECT v FROM ${ks}.t WHERE k = ? AND c = ?`, [3, 7], { prepare: true });
  out.read = one.rows.map(r => r.v);
  // the driver's own token map and replica placement for partition k = 3 (its routing key: int 3)
  out.replicas = client.getReplicas(ks, Buffer.from([0, 0, 0, 3])).map(h => h.address).sort();
  // paging: a partition of 20 rows in pages of 6, by pageState, then the whole table with eachRow
  const pages = [];
  let pageState = undefined;
  do {
    const rs = await client.execute(`SELECT c FROM ${ks}.t WHERE k = ?`, [2],
                                    { prepare: true, fetchSize: 6, pageState });
    pages.push(rs.rows.map(r => r.c));
    pageState = rs.pageState;
  } while (pageState);
  out.pages = pages;
  out.scanned = await new Promise((resolve, reject) => {
    let n = 0;
    client.eachRow(`SELECT k, c FROM ${ks}.t`, [], { prepare: true, fetchSize: 7, autoPage: true },
                   () => { n += 1; }, err => (err ? reject(err) : resolve(n)));
  });
  await client.shutdown();
  console.log(JSON.stringify(out));
}

main().catch(err => { console.error(`driver_check failed: ${err && err.stack || err}`); process.exit(1); });
