"""The app and its transport: the one place that hands Faust our consumer and producer."""

from typing import ClassVar

import faust
from faust.transport.drivers import aiokafka
from faust.types.transports import TransportT
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from streams.faust_patches.consumer import Consumer, FlowControl
from streams.faust_patches.producer import Producer


class Transport(aiokafka.Transport):
    Consumer: ClassVar[type[aiokafka.Consumer]] = Consumer
    Producer: ClassVar[type[aiokafka.Producer]] = Producer


class App(faust.App):
    """Faust's app on our consumer. Faust builds its transport from the broker URL's
    scheme alone; the override is the one place that can hand it our consumer. Its flow
    control tells the consumer when it resumes."""

    whole_standbys = False
    """Standby changelog records applied a fetch at a time (`Consumer.apply_standby`)."""

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return FlowControl(self, loop=self.loop)
