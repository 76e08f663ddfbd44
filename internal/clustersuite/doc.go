// Package clustersuite runs every engine's contract suite, and the bus's
// failover tests, on a real Redis Cluster of three masters and three
// replicas started by the tests (internal/redistest). It has no code of its
// own: the tests live apart from the engines' packages so that a slow
// cluster start or a failover never makes those packages' runs flaky.
package clustersuite
