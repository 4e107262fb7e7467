"""The network (``network``), its fast LSTM, its loss, its vocabulary, and the model directory (``store``).
"""
