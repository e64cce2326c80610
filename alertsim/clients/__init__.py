"""Client applications of the alert feed: the receiver (`receiver`) and the operator
console (`operator`). They talk to a broker through `alertsim.mqtt`, never to the service."""
