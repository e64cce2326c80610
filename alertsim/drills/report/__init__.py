"""drills/report"""
