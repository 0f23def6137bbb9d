"""difflens.draw"""
