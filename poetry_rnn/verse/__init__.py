"""Tang verse and Song ci without TensorFlow: forms, rhyme books and tones, tone patterns, the ci tune patterns
(``cipai``, rhyming by ``cilin``), the poem request, the validator.

``validator`` checks a finished poem against its request on its own, never through the decoder's masks.
"""
