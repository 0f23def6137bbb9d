"""difflens.gp"""
