// Package brokertest holds the tests of what only a real Apache Kafka
// shows, and kfake cannot: topic bootstrap with the broker's own configs,
// goka's Sarama settings against Kafka 4's protocol, consumer-group
// rebalances between processor instances, table recovery from changelogs,
// and the partitioning contract between franz-go producers and goka.
//
// They run in `make test`'s integration lane against the broker that
// deploy/kafka/kafka.sh starts, named by FLEETSTREAM_TEST_KAFKA, and skip
// with a message without it. The package has no code of its own.
package brokertest
