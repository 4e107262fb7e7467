"""Writing with a model: a request is planned once into arrays (``constraints``), each constraint or pull
on the logits is a processor (``processors``), the sampler runs them in one ``tf.while_loop``
(``sampler``), and drafts are ranked (``drafts``, ``ranking``). ``noise`` keys each poem's random numbers.
"""
