"""difflens.dynamics"""
