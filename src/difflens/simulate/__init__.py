"""difflens.simulate"""
