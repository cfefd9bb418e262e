"""The benchmark suite: throughput of the projections against raw aiokafka, Faust and Quix."""
