def parse(text):
    raise NotImplementedError("parser: being written")
