"""difflens.synthesize"""
