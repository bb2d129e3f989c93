// Package mqttsource is vward's connection to the MQTT broker: it takes
// the devices' messages to the ingest pipeline, which acknowledges each
// once it is stored.
//
// A device's message enters vward in deliver (deliver.go): there the
// PUBLISH the broker sent becomes an ingest.Delivery and a Pipeline.Submit.
// The PUBLISH packets are read off the connection by vward itself
// (bufferedConn.readInbound), and each is acknowledged on the connection
// it came in on; paho's client keeps the session: CONNECT, SUBSCRIBE,
// keepalive, reconnects and what vward publishes
// (docs/design/mqtt-read-off-the-connection.md,
// docs/design/mqtt-ack-on-the-arrival-connection.md).
//
// Build a Source with NewSource and start Run. It keeps Config.Connections
// persistent sessions, retires those vward no longer uses (retire.go), and
// publishes the pipeline's rejections on each device's rejected topic.
package mqttsource
