def print_graph(graph, locations=True, full_constants=False):
    raise NotImplementedError("printer: being written")
